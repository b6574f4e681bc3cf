//! A restart picks up where the last run stopped: it adopts a server whose
//! creation was interrupted instead of making a second one, and finishes a
//! deletion that was under way.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::{Op, Scenario, Timings};
use stackbinder::config::JupyterAccess;
use std::time::Duration;
use tokio::time::Instant;

/// Step the provisioner until the VM is in `state`; bounded.
async fn step_until(app: &TestApp, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        app.step().await;
        let view = app.api_vm_json().await;
        if view["state"] == state {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "the VM never got {state}: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn manual() -> TestOptions {
    TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn a_restart_during_a_launch_adopts_the_server_instead_of_creating_another() {
    let mut app = spawn_app_with(TestOptions {
        // Slow enough a boot that the VM's first report finds the new app.
        timings: Timings {
            boot: Duration::from_millis(1500),
            ..Timings::quick()
        },
        // The link is opened straight at the VM.
        jupyter_access: JupyterAccess::FloatingIp,
        ..manual()
    })
    .await;
    app.login_registered("olga").await;
    app.cloud.push_scenario(Scenario::LoseCreateResponse);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    assert_eq!(
        app.api_vm_json().await["state"],
        "requested",
        "nothing moves without a step"
    );

    // The server is created, but the answer is lost.
    app.step().await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_eq!(app.cloud.server_count(), 1);
    let view = app.api_vm_json().await;
    assert_eq!(view["state"], "creating", "{view:#}");
    let vm_id = view["id"].clone();

    app.restart().await;
    assert_eq!(
        app.api_vm_json().await["id"],
        vm_id,
        "the session and the VM survived the restart"
    );

    let view = step_until(&app, "ready").await;
    assert_eq!(view["id"], vm_id);
    assert_eq!(
        app.cloud.calls(Op::CreateServer),
        1,
        "the server was adopted, not created again"
    );
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.cloud.volume_count(), 1);
    let jupyter = view["jupyter_url"].as_str().expect("a Jupyter link");
    assert_eq!(
        plain_client().get(jupyter).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(app.store().list_vms(true).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_restart_during_a_deletion_finishes_it() {
    let mut app = spawn_app_with(TestOptions {
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        ..manual()
    })
    .await;
    app.login_registered("pavel").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    step_until(&app, "ready").await;
    assert_eq!(app.cloud.floating_ip_count(), 1);

    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    assert_eq!(app.api_vm_json().await["state"], "deleting");
    // The server's deletion is requested.
    app.step().await;
    assert_eq!(app.cloud.calls(Op::DeleteServer), 1);
    assert_eq!(app.api_vm_json().await["state"], "deleting");

    app.restart().await;
    step_until(&app, "deleted").await;
    assert_eq!(app.cloud.server_count(), 0);
    assert_eq!(app.cloud.volume_count(), 0);
    assert_eq!(app.cloud.floating_ip_count(), 0);
    assert_eq!(
        app.cloud.calls(Op::DeleteServer),
        1,
        "a deletion under way is not asked for twice"
    );
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
}

#[tokio::test]
async fn a_restart_with_the_background_driver_resumes_a_launch() {
    let mut app = spawn_app().await;
    app.login_registered("quinn").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.restart().await;
    app.wait_for_state("ready").await;
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(app.cloud.server_count(), 1);
}

#[tokio::test]
async fn stopping_ends_open_event_streams() {
    let mut app = spawn_app().await;
    app.login_registered("rita").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;
    let mut events = app.get("/api/vm/events").await;
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.chunk().await.unwrap().is_some(), "a first event");

    // `stop` panics if the server does not stop within 10 s.
    app.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the event stream ends when the server stops");
}
