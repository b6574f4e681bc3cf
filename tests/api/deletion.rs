//! Deleting at any point of a launch leaves nothing behind in the cloud.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::{Op, Scenario, Timings};
use stackbinder::config::JupyterAccess;
use std::time::Duration;

fn manual() -> TestOptions {
    TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    }
}

fn assert_cloud_is_empty(app: &TestApp) {
    assert_eq!(app.cloud.server_count(), 0, "no server left");
    assert_eq!(app.cloud.volume_count(), 0, "no volume left");
    assert_eq!(app.cloud.floating_ip_count(), 0, "no floating IP left");
}

#[tokio::test]
async fn deleting_a_queued_launch_never_touches_the_cloud() {
    let app = spawn_app_with(manual()).await;
    app.login_registered("abel").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    assert_eq!(app.api_vm_json().await["state"], "requested");
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert_cloud_is_empty(&app);
}

#[tokio::test]
async fn deleting_while_the_servers_creation_is_unconfirmed_finds_and_deletes_it() {
    let app = spawn_app_with(manual()).await;
    app.login_registered("bria").await;
    app.cloud.push_scenario(Scenario::LoseCreateResponse);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    assert_eq!(app.api_vm_json().await["state"], "creating");
    assert_eq!(app.cloud.server_count(), 1);

    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_cloud_is_empty(&app);
}

#[tokio::test]
async fn deleting_while_booting_or_building_leaves_nothing() {
    for progress in ["booting", "cloning", "building"] {
        let app = spawn_app_with(TestOptions {
            floating_ip_pool: Some("public".into()),
            jupyter_access: JupyterAccess::FloatingIp,
            timings: Timings {
                boot: Duration::from_millis(300),
                clone: Duration::from_millis(300),
                build: Duration::from_millis(300),
                ..Timings::quick()
            },
            ..TestOptions::default()
        })
        .await;
        app.login_registered("cyd").await;
        assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
        app.wait_for_view(&app.browser, progress, |v| v["step"] == progress)
            .await;

        assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
        let view = app.wait_for_state("deleted").await;
        assert!(view["jupyter_url"].is_null());
        assert_cloud_is_empty(&app);
        // Nothing comes back to life afterwards.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            app.api_vm_json().await["state"],
            "deleted",
            "while {progress}"
        );
        assert_cloud_is_empty(&app);
        assert_eq!(app.cloud.created().len(), 1);
    }
}

#[tokio::test]
async fn a_vm_being_deleted_cannot_be_replaced_until_it_is_gone() {
    let app = spawn_app_with(manual()).await;
    app.login_registered("dora").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let first = app.wait_for_state("ready").await;
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    assert_eq!(app.api_vm_json().await["state"], "deleting");

    // A second launch lands on the VM being deleted.
    let (status, page) = app.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("You already have a VM"), "{page}");
    let csrf = app.csrf().await;
    let response = app
        .post_form("/VM_start", &[("csrf", &csrf), ("giturl", REPO)])
        .await;
    assert_is_redirect_to(&response, "/VM_status");
    assert_eq!(app.api_vm_json().await["id"], first["id"]);
    // A second delete is harmless.
    assert_is_redirect_to(
        &app.post_form("/VM_delete", &[("csrf", &csrf)]).await,
        "/VM_status",
    );

    app.wait_for_state("deleted").await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_eq!(app.cloud.calls(Op::DeleteServer), 1);
    assert_cloud_is_empty(&app);
}

#[tokio::test]
async fn volumes_the_cloud_keeps_are_deleted_too() {
    let app = spawn_app_with(TestOptions {
        configure: |config| config.cloud.delete_volume_on_termination = false,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("fay").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;
    assert!(!app.cloud.created()[0].delete_volume_on_termination);
    assert_eq!(app.cloud.volume_count(), 1);
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    assert!(app.cloud.calls(Op::DeleteVolume) >= 1);
    assert_cloud_is_empty(&app);
}
