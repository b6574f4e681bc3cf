//! The driver lease: `/healthz` and `/metrics` tell whether this replica
//! drives, a replica that lost the lease moves no VM and touches nothing
//! in the cloud (its writes are fenced by the lease's epoch), and a clean
//! stop lets the lease go. On both stores (`TEST_STORE=postgres`).

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use stackbinder::domain::VmState;
use stackbinder::lease::{DRIVER, Fence, ReplicaId};
use stackbinder::store::{EventKind, StoreError};
use std::num::NonZero;
use std::time::Duration;

fn manual() -> TestOptions {
    TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    }
}

/// The database the test apps run on (`TEST_STORE`).
fn database() -> &'static str {
    if postgres::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// Take the driver lease from whoever holds it, as another replica would
/// once it expired; returns the fence of the new holder.
async fn take_over(app: &TestApp) -> Fence {
    let store = app.store();
    let (observed, now) = store.observe_lease(DRIVER).await.unwrap();
    let observed = observed.expect("the application holds the lease");
    let other = ReplicaId::from_stored("another-replica".into());
    let epoch = observed.epoch.next();
    let taken = store
        .take_lease(
            DRIVER,
            &other,
            Some(&observed),
            epoch,
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert!(taken, "the take-over compares on holder and epoch");
    Fence {
        lease: DRIVER,
        holder: other,
        epoch,
    }
}

async fn health(app: &TestApp) -> (StatusCode, serde_json::Value) {
    let response = app.get("/healthz").await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn healthz_and_metrics_say_this_replica_leads() {
    let app = spawn_app().await;
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "status": "ok", "database": database(), "driver": "leader" })
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("\nstackbinder_driver_leader 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn healthz_is_503_when_the_database_does_not_answer() {
    let app = spawn_app().await;
    app.store().close().await;
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["database"], database(), "{body}");
    assert!(
        matches!(body["driver"].as_str(), Some("leader" | "standby")),
        "{body}"
    );
}

#[tokio::test]
async fn a_replica_whose_lease_was_taken_over_moves_no_vm_and_calls_no_cloud() {
    let app = spawn_app_with(manual()).await;
    app.login_registered("ada").await;
    assert_is_redirect_to(&app.launch(REPO, "", "").await, "/VM_status");
    take_over(&app).await;

    // It still believes it leads until its next renewal; the store does not.
    app.step().await;
    assert_eq!(app.api_vm_json().await["state"], "requested");
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);

    // At its next renewal it sees the lease gone and stands by.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = health(&app).await;
        assert_eq!(status, StatusCode::OK);
        if body["driver"] == "standby" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("\nstackbinder_driver_leader 0\n"),
        "{metrics}"
    );
    app.step().await;
    assert_eq!(app.api_vm_json().await["state"], "requested");
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
}

#[tokio::test]
async fn a_write_fenced_by_an_old_epoch_is_refused_and_the_new_one_goes_through() {
    let app = spawn_app_with(manual()).await;
    app.login_registered("bo").await;
    assert_is_redirect_to(&app.launch(REPO, "", "").await, "/VM_status");
    let vm = app.store().live_vms().await.unwrap().remove(0);
    let old = app
        .provisioner()
        .leadership()
        .fence()
        .expect("the application leads");
    let new = take_over(&app).await;
    assert_eq!(new.epoch, old.epoch.next());

    let stale = app.store().fenced(old.clone());
    let refused = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::Fenced { epoch }) => assert_eq!(epoch, old.epoch, "{what}"),
        other => panic!("{what}: {other:?}"),
    };
    refused(
        stale
            .transition(vm.id, VmState::Requested, VmState::Creating, "stale")
            .await
            .map(drop),
        "transition",
    );
    refused(
        stale.set_server_id(vm.id, "stale-server").await,
        "server id",
    );
    refused(
        stale.append_event(vm.id, EventKind::State, "stale").await,
        "event",
    );
    refused(
        stale.request_delete(vm.id, "stale").await.map(drop),
        "delete",
    );
    refused(stale.check_lease().await, "the check before a cloud call");
    let unchanged = app.store().vm(vm.id).await.unwrap().unwrap();
    assert_eq!(unchanged.state, VmState::Requested);
    assert_eq!(unchanged.server_id, None);
    let events = app.store().recent_events(vm.id, 50).await.unwrap();
    assert!(
        events.iter().all(|e| !e.message.contains("stale")),
        "{events:?}"
    );

    // A fence of the same epoch but another holder is no better.
    let impostor = app.store().fenced(Fence {
        holder: ReplicaId::from_stored("impostor".into()),
        ..new.clone()
    });
    assert!(matches!(
        impostor.set_server_id(vm.id, "impostor").await,
        Err(StoreError::Fenced { .. })
    ));

    let current = app.store().fenced(new);
    current.check_lease().await.unwrap();
    assert!(
        current
            .transition(
                vm.id,
                VmState::Requested,
                VmState::Creating,
                "the new leader"
            )
            .await
            .unwrap()
    );
    assert_eq!(
        app.store().vm(vm.id).await.unwrap().unwrap().state,
        VmState::Creating
    );
}

#[tokio::test]
async fn a_clean_stop_lets_the_lease_go_and_the_restart_takes_it_at_a_new_epoch() {
    let mut app = spawn_app_with(manual()).await;
    let first = app.provisioner().leadership().fence().unwrap();
    app.stop().await;
    let (observed, now) = app.store().observe_lease(DRIVER).await.unwrap();
    let observed = observed.unwrap();
    assert_eq!(observed.holder, first.holder);
    assert!(observed.expires_at <= now, "{observed:?} at {now}");
    app.restart().await;
    let second = app.provisioner().leadership().fence().unwrap();
    assert_ne!(second.holder, first.holder, "a new process, a new replica");
    assert_eq!(second.epoch, first.epoch.next());
}

#[tokio::test]
async fn a_launch_recorded_by_another_process_wakes_the_leader_on_postgres() {
    if !postgres::on_postgres() {
        eprintln!("skipped: another process's launch wakes the leader only on PostgreSQL (NOTIFY)");
        return;
    }
    // A poll a minute: only the wake-up can move the launch within the wait.
    let app = spawn_app_with(TestOptions {
        configure: |c| c.provision.poll_interval_ms = NonZero::new(60_000).unwrap(),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("cy").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["vm", "start", "--user", "cy", "--repo", REPO])
        .env("STACKBINDER_DATABASE__URL", &app.config.database.url)
        .env("STACKBINDER_SERVER__BIND", "127.0.0.1:0")
        .env_remove("STACKBINDER_CONFIG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view = app
        .wait_for_view(&app.browser, "the launch to be picked up", |v| {
            v["state"].as_str().is_some_and(|s| s != "requested")
        })
        .await;
    assert_ne!(view["state"], "failed", "{view:#}");
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
}
