//! The warm pool with two replicas on one PostgreSQL database: a pool VM's
//! request for its job is held by one replica, the launch that claims the
//! VM is made on the other, and the held request answers at once.

use crate::helpers::{REPO, TestApp, TestOptions, postgres, spawn_app_with};
use stackbinder::domain::{GithubId, LaunchPath, Login};
use stackbinder::store::{PoolState, PoolVm};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// The pool VM once its request for its job is held by `app`.
async fn held_pool_vm(app: &TestApp) -> PoolVm {
    let deadline = Instant::now() + WAIT;
    loop {
        let pool = app.store().pool_vms().await.unwrap();
        if let Some(vm) = pool.into_iter().find(|vm| {
            vm.state == PoolState::Ready && app.provisioner().held_assignment_requests(vm.id) == 1
        }) {
            return vm;
        }
        assert!(Instant::now() < deadline, "no pool VM waits for its job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_claim_on_another_replica_left_the_held_request_to_its_recheck() {
    if !postgres::available() {
        return;
    }
    // Arrange: the leader boots the pool VM, whose request for its job it
    // holds; ada logs in on the other replica.
    let leader = spawn_app_with(TestOptions {
        on_postgres: true,
        configure: |c| {
            c.pool.size = 1;
            c.provision.assignment_hold_seconds = std::num::NonZero::new(300).unwrap();
        },
        ..TestOptions::default()
    })
    .await;
    let other = leader.another_replica().await;
    other.browser.login_registered("ada").await;
    let vm = held_pool_vm(&leader).await;

    // Act: ada launches on the other replica, which claims the pool VM.
    let clicked = Instant::now();
    other.browser.launch(REPO, "", "").await;

    // Assert: the leader answers the held request at once, well before it
    // would look at the store again by itself (every 5 s).
    let ada = GithubId::for_demo(&Login::parse("ada").unwrap());
    let claimed = other.store().live_vm_of(ada).await.unwrap().unwrap();
    assert_eq!(claimed.id, vm.id);
    assert_eq!(claimed.launch_path, LaunchPath::Pool);
    while leader.provisioner().held_assignment_requests(vm.id) > 0 {
        assert!(
            clicked.elapsed() < Duration::from_secs(2),
            "the held request was not answered within 2 s of the claim"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    leader.wait_for_state_of(&other.browser, "ready").await;
}
