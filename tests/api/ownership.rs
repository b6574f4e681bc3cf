//! The simulated cloud honours installation ids as the OpenStack backend
//! does (issue #10, items 2 to 5): what another installation or an
//! operator made is never touched, a delete takes only the boot volume,
//! and a failed launch gives its resources back at once.

use crate::helpers::{REPO, TestOptions, spawn_app_with};
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Scenario;
use stackbinder::cloud::{Cloud, InstallationId, META_INSTANCE, META_VM, ServerSpec};
use stackbinder::domain::{Login, VmId};
use std::collections::BTreeMap;
use std::time::Duration;

fn foreign_spec() -> ServerSpec {
    ServerSpec {
        name: "someone-elses".into(),
        image: "img".into(),
        flavor: "m1".into(),
        volume_size_gb: 10,
        delete_volume_on_termination: true,
        key_name: None,
        security_groups: vec![],
        network: None,
        user_data: String::new(),
        metadata: BTreeMap::from([
            (META_VM.to_owned(), VmId::new().to_string()),
            (
                META_INSTANCE.to_owned(),
                InstallationId::generate().to_string(),
            ),
        ]),
        home_volume: None,
        availability_zone: None,
    }
}

#[tokio::test]
async fn the_admin_page_shows_the_installation_id_the_vms_carry() {
    let app = spawn_app_with(TestOptions {
        configure: |c| c.registration.admins = vec![Login::parse("boss").unwrap().into()],
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let id = app.provisioner().installation().to_string();
    assert_eq!(id, app.store().installation_id().await.unwrap().to_string());
    assert_eq!(id.len(), 32);

    let boss = app.new_browser();
    boss.login("boss").await;
    let (status, page) = boss.get_page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("<code id=\"installation\">{id}</code>")));
    assert_eq!(app.cloud.created()[0].metadata[META_INSTANCE], id);
}

#[tokio::test]
async fn a_simulated_reconciler_leaves_another_installations_server_and_an_operators_floating_ip_alone()
 {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        floating_ip_pool: Some("public".into()),
        configure: |c| c.provision.orphan_grace_minutes = 0,
        ..TestOptions::default()
    })
    .await;
    let foreign = app.cloud.create_server(&foreign_spec()).await.unwrap();
    let operators = app.cloud.add_operator_floating_ip();
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;

    for _ in 0..3 {
        app.provisioner().reconcile().await.unwrap();
    }

    assert!(app.cloud.get_server(&foreign).await.unwrap().is_some());
    assert_eq!(app.api_vm_json().await["state"], "ready");
    assert_eq!(app.cloud.floating_ip_attachment(&operators), Some(None));
    app.delete_vm().await;
    app.wait_for_state("deleted").await;
    assert_eq!(
        app.cloud.floating_ip_attachment(&operators),
        Some(None),
        "neither taken nor released"
    );
    assert!(app.cloud.get_server(&foreign).await.unwrap().is_some());
}

#[tokio::test]
async fn deleting_a_simulated_vm_keeps_a_volume_attached_by_hand() {
    let app = spawn_app_with(TestOptions::default()).await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    let vm = app
        .store()
        .vm(view["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vm.volume_ids.0.len(), 1, "the boot volume is recorded");
    let operators = app
        .cloud
        .attach_operator_volume(vm.server_id.as_deref().unwrap());

    app.delete_vm().await;
    app.wait_for_state("deleted").await;

    assert!(app.cloud.has_volume(&operators));
    assert!(!app.cloud.has_volume(&vm.volume_ids.0[0]));
}

#[tokio::test]
async fn a_failed_simulated_launch_gives_back_its_server_volume_and_floating_ip() {
    let app = spawn_app_with(TestOptions {
        floating_ip_pool: Some("public".into()),
        ..TestOptions::default()
    })
    .await;
    app.cloud
        .push_scenario(Scenario::BuildFails(vec!["ERROR: no such file".into()]));
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let failed = app.wait_for_state("failed").await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.cloud.server_count() + app.cloud.volume_count() + app.cloud.floating_ip_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resources stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = app.api_vm_json().await;
    assert_eq!(view["state"], "failed");
    assert_eq!(view["error"], failed["error"]);
    assert!(
        view["log"].to_string().contains("ERROR: no such file"),
        "{view:#}"
    );
}
