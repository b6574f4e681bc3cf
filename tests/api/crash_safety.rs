//! Kill stackbinder at every step of a launch and of a delete (and lose the
//! cloud's answer to each call that changes something, as a crash between
//! the cloud's "yes" and our record of it would), restart it on the same
//! store and cloud, and check the end state: one VM per user, one server
//! ever created, and after the delete no server, volume or floating IP.

use crate::helpers::{REPO, TestApp, TestOptions, spawn_app_with};
use stackbinder::cloud::simulated::Op;
use stackbinder::config::JupyterAccess;
use std::time::Duration;

const LAUNCH_STATES: [&str; 5] = ["requested", "creating", "booting", "building", "ready"];

async fn app() -> TestApp {
    spawn_app_with(TestOptions {
        drive_in_background: false,
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        ..TestOptions::default()
    })
    .await
}

/// Step the provisioner until the VM is in `state` (or past it).
async fn step_until(app: &TestApp, states: &[&str]) -> String {
    for _ in 0..400 {
        let view = app.api_vm_json().await;
        let state = view["state"].as_str().unwrap_or_default().to_owned();
        if states.contains(&state.as_str()) {
            return state;
        }
        assert_ne!(state, "failed", "the VM failed: {view:#}");
        app.step().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the VM never reached {states:?}: {:#}",
        app.api_vm_json().await
    );
}

/// Launch; crash when the VM first shows `crash_at` (or anything later);
/// restart; finish; then delete, crashing right after the first delete
/// step; restart; finish. `lose` makes the cloud lose the answer to one
/// call of that operation.
async fn launch_and_delete_with_a_crash(crash_at: &str, lose: Option<Op>) {
    let mut app = app().await;
    app.login_registered("ada").await;
    if let Some(op) = lose {
        app.cloud.lose_answer(op, 1);
    }
    app.launch(REPO, "", "").await;

    let later: Vec<&str> = LAUNCH_STATES
        .iter()
        .skip_while(|s| **s != crash_at)
        .copied()
        .collect();
    step_until(&app, &later).await;
    app.restart().await;
    step_until(&app, &["ready"]).await;

    assert_eq!(
        app.cloud.created().len(),
        1,
        "crash at {crash_at}, lost {lose:?}: one server ever"
    );
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.store().list_vms(false).await.unwrap().len(), 1);

    app.delete_vm().await;
    app.step().await;
    app.restart().await;
    step_until(&app, &["deleted"]).await;

    assert_eq!(
        app.cloud.server_count(),
        0,
        "crash at {crash_at}, lost {lose:?}: server left"
    );
    assert_eq!(
        app.cloud.volume_count(),
        0,
        "crash at {crash_at}, lost {lose:?}: volume left"
    );
    assert_eq!(
        app.cloud.floating_ip_count(),
        0,
        "crash at {crash_at}, lost {lose:?}: address left"
    );
}

#[tokio::test]
async fn a_crash_at_any_launch_state_ends_right() {
    for state in LAUNCH_STATES {
        launch_and_delete_with_a_crash(state, None).await;
    }
}

#[tokio::test]
async fn a_lost_create_answer_is_adopted_not_duplicated() {
    for state in ["requested", "booting", "ready"] {
        launch_and_delete_with_a_crash(state, Some(Op::CreateServer)).await;
    }
}

#[tokio::test]
async fn a_lost_floating_ip_answer_reuses_the_attached_address() {
    launch_and_delete_with_a_crash("booting", Some(Op::AttachFloatingIp)).await;
}

#[tokio::test]
async fn lost_answers_during_the_delete_still_leave_nothing_behind() {
    for op in [Op::DeleteServer, Op::DeleteVolume, Op::ReleaseFloatingIp] {
        let mut app = app().await;
        app.login_registered("ada").await;
        app.launch(REPO, "", "").await;
        step_until(&app, &["ready"]).await;
        app.cloud.lose_answer(op, 1);
        app.delete_vm().await;
        for _ in 0..3 {
            app.step().await;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        app.restart().await;
        step_until(&app, &["deleted"]).await;
        assert_eq!(app.cloud.server_count(), 0, "lost {op:?}: server left");
        assert_eq!(app.cloud.volume_count(), 0, "lost {op:?}: volume left");
        assert_eq!(
            app.cloud.floating_ip_count(),
            0,
            "lost {op:?}: address left"
        );
    }
}
