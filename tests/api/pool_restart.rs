//! A crash of stackbinder between a pool VM's claim and the answer to the
//! VM's long-poll: the claim is in the store, so the restarted server
//! answers the VM's next request with its job, and the launch goes on to
//! ready on the simulated cloud, whose VMs ask for their job themselves.
//! A user's first claim with home volumes on has no job yet: the
//! restarted driver makes and attaches the storage, then gives it.

use crate::helpers::{REPO, TestApp, TestOptions, spawn_app_with};
use stackbinder::cloud::simulated::Op;
use stackbinder::cloud_init::Assignment;
use stackbinder::domain::{GitRef, GithubId, LaunchPath, LaunchRequest, Login, RepoSpec, UrlPath};
use stackbinder::store::{NewVm, PoolState, PoolVm, Store, VmRecord};
use std::time::{Duration, Instant};

/// Wait for ada's ready pool VM, stop stackbinder, claim it for ada the
/// way a launch does (with `job`, or none yet) on the stopped server's
/// database, as the dead process left it, and start again.
async fn claim_across_a_crash(app: &mut TestApp, job: Option<&Assignment>) -> PoolVm {
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
    app.stop().await;
    let store = Store::connect(&app.config.database.url).await.unwrap();
    let request = LaunchRequest {
        repo: RepoSpec::parse(REPO).unwrap(),
        git_ref: GitRef::head(),
        url_path: UrlPath::default(),
        profile: None,
        ide: None,
    };
    let new = NewVm {
        owner: GithubId::for_demo(&Login::parse("ada").unwrap()),
        name: "binder-ada",
        request: &request,
        jupyter_token: "jupyter-token",
        expires_at: chrono::Utc::now() + chrono::Duration::hours(8),
    };
    let claimed = store
        .claim_pool_vm(new, job, &stackbinder::secret::generate())
        .await
        .unwrap()
        .expect("the ready pool VM is claimed");
    assert_eq!(claimed.vm.id, ready.id);
    store.close().await;
    app.restart().await;
    ready
}

async fn vm_of(app: &TestApp, ready: &PoolVm) -> VmRecord {
    let store = app.provisioner().store();
    store.vm(ready.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_claim_made_just_before_a_crash_is_answered_after_the_restart() {
    // Arrange
    let mut app = spawn_app_with(TestOptions {
        configure: |c| c.pool.size = 1,
        ..TestOptions::default()
    })
    .await;
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

    // Act
    let ready = claim_across_a_crash(&mut app, Some(&job)).await;

    // Assert: the same VM gets its job and becomes ready for ada.
    let view = app.wait_for_state("ready").await;
    assert_eq!(view["id"], ready.id.to_string());
    let vm = vm_of(&app, &ready).await;
    assert_eq!(vm.launch_path, LaunchPath::Pool);
    assert_eq!(vm.server_id, ready.server_id);
    assert!(vm.claim_settled_at.is_some());
}

#[tokio::test]
async fn a_first_claim_with_storage_made_just_before_a_crash_gets_it_after_the_restart() {
    // Arrange: home volumes on; ada has none yet.
    let mut app = spawn_app_with(TestOptions {
        configure: |c| {
            c.pool.size = 1;
            c.storage.home_volume_gb = 10;
        },
        ..TestOptions::default()
    })
    .await;

    // Act: the claim committed without a job (it waits for the storage).
    let ready = claim_across_a_crash(&mut app, None).await;

    // Assert: the restarted driver made the storage once, attached it to
    // the claimed server, and the VM got its job and became ready.
    let view = app.wait_for_state("ready").await;
    assert_eq!(view["id"], ready.id.to_string());
    assert!(
        view.to_string()
            .contains("your storage is mounted at /home/jovyan/work"),
        "{view:#}"
    );
    let vm = vm_of(&app, &ready).await;
    assert_eq!(vm.launch_path, LaunchPath::Pool);
    assert_eq!(vm.server_id, ready.server_id);
    assert!(vm.assigned_at.is_some() && vm.claim_settled_at.is_some());
    assert_eq!(app.cloud.calls(Op::CreateVolume), 1, "made once");
    assert_eq!(app.cloud.calls(Op::AttachVolume), 1);
    let home = app.provisioner().store().home_volume(vm.owner_id).await;
    assert!(home.unwrap().is_some(), "the storage is recorded");
}
