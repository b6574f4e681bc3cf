//! Home volumes on the simulated cloud (`demo`): made once, attached to
//! every VM of its owner, kept by a delete and by the reconciler.

use crate::helpers::*;
use stackbinder::cloud::simulated::Op;

#[tokio::test]
async fn the_demo_keeps_a_users_storage_across_their_vms() {
    // Arrange
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.storage.home_volume_gb = 10;
            c.provision.orphan_grace_minutes = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ines").await;

    // Act: launch, delete, reconcile twice (grace 0), launch again.
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let ready = app.wait_for_state("ready").await;
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    for _ in 0..2 {
        app.provisioner().reconcile().await.unwrap();
    }
    let home = app.cloud.created()[0]
        .home_volume
        .clone()
        .expect("attached");
    let kept = app.cloud.has_volume(&home);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;

    // Assert
    assert!(
        ready
            .to_string()
            .contains("your storage is mounted at /home/jovyan/work"),
        "{ready:#}"
    );
    assert!(kept, "the delete and the reconciler kept the home volume");
    let created = app.cloud.created();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].home_volume.as_deref(), Some(home.as_str()));
    assert_eq!(app.cloud.calls(Op::CreateVolume), 1, "made once");
    assert_eq!(
        app.cloud.volume_count(),
        2,
        "the home volume and one boot volume"
    );
}
