//! A crash of stackbinder between a pool VM's claim and the answer to the
//! VM's long-poll: the claim is in the store, so the restarted server
//! answers the VM's next request with its job, and the launch goes on to
//! ready on the simulated cloud, whose VMs ask for their job themselves.

use crate::helpers::{REPO, TestOptions, spawn_app_with};
use stackbinder::cloud_init::Assignment;
use stackbinder::domain::{GitRef, GithubId, LaunchPath, LaunchRequest, Login, RepoSpec, UrlPath};
use stackbinder::store::{NewVm, PoolState, Store};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_claim_made_just_before_a_crash_is_answered_after_the_restart() {
    // Arrange: a ready pool VM (the simulated VM asked for its job).
    let mut app = spawn_app_with(TestOptions {
        configure: |c| c.pool.size = 1,
        ..TestOptions::default()
    })
    .await;
    app.browser.login_registered("ada").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let pool = app.provisioner().store().pool_vms().await.unwrap();
        if let Some(vm) = pool.into_iter().find(|vm| vm.state == PoolState::Ready) {
            break vm;
        }
        assert!(Instant::now() < deadline, "no ready pool VM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Act: stackbinder dies right after the claim's transaction committed
    // (the claim is made on the stopped server's database, as the dead
    // process left it), then starts again.
    app.stop().await;
    let store = Store::connect(&app.config.database.url).await.unwrap();
    let ada = GithubId::for_demo(&Login::parse("ada").unwrap());
    let request = LaunchRequest {
        repo: RepoSpec::parse(REPO).unwrap(),
        git_ref: GitRef::head(),
        url_path: UrlPath::default(),
        profile: None,
        ide: None,
    };
    let job = Assignment {
        login: "ada".into(),
        repo: REPO.into(),
        git_ref: "HEAD".into(),
        url_path: String::new(),
        jupyter_token: "jupyter-token".into(),
        gpu: false,
        home_volume_id: None,
        callback_secret: None,
    };
    let new = NewVm {
        owner: ada,
        name: "binder-ada",
        request: &request,
        jupyter_token: "jupyter-token",
        expires_at: chrono::Utc::now() + chrono::Duration::hours(8),
    };
    let claimed = store
        .claim_pool_vm(new, &job, &stackbinder::secret::generate())
        .await
        .unwrap()
        .expect("the ready pool VM is claimed");
    store.close().await;
    app.restart().await;

    // Assert: the same VM gets its job and becomes ready for ada.
    assert_eq!(claimed.vm.id, ready.id);
    let view = app.wait_for_state("ready").await;
    assert_eq!(view["id"], ready.id.to_string());
    let vm = app
        .provisioner()
        .store()
        .vm(ready.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vm.launch_path, LaunchPath::Pool);
    assert_eq!(vm.server_id, ready.server_id);
    assert!(vm.claim_settled_at.is_some());
}
