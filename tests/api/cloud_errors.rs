//! When the cloud or the build fails, the user sees why and where, and can
//! delete what is left; transient errors are retried.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{Op, Scenario, Timings};
use stackbinder::config::JupyterAccess;
use std::num::NonZero;
use std::time::Duration;

async fn launched_app(options: TestOptions) -> TestApp {
    let app = spawn_app_with(options).await;
    app.login_registered("nadia").await;
    app
}

/// Delete the VM and check that nothing is left in the cloud.
async fn delete_and_check_clean(app: &TestApp) {
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    assert_eq!(app.cloud.server_count(), 0);
    assert_eq!(app.cloud.volume_count(), 0);
    assert_eq!(app.cloud.floating_ip_count(), 0);
}

#[tokio::test]
async fn a_boot_fault_fails_the_launch_with_the_clouds_reason() {
    let app = launched_app(TestOptions::default()).await;
    app.cloud
        .push_scenario(Scenario::BootFault("No valid host was found".into()));
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");

    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().expect("a failed VM says why");
    assert!(error.contains("No valid host was found"), "{error}");
    assert!(
        error.contains("booting"),
        "the error names the phase: {error}"
    );
    assert_eq!(view["step"], "booting");
    assert_eq!(view["can_delete"], true);
    assert!(view["jupyter_url"].is_null());
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(
        app.cloud.server_count(),
        1,
        "the failed server stays until deleted"
    );

    let (status, page) = app.get_page("/VM_status").await;
    assert_eq!(status, StatusCode::OK);
    let page = unescape(&page);
    assert!(page.contains("No valid host was found"), "{page}");
    assert!(page.contains("id=\"delete-link\""), "{page}");

    delete_and_check_clean(&app).await;
    assert_eq!(
        app.cloud.created().len(),
        1,
        "deleting does not create anything"
    );
}

#[tokio::test]
async fn a_failed_build_fails_the_launch_with_its_last_log_line() {
    let app = launched_app(TestOptions::default()).await;
    let lines = vec![
        "Step 27/52 : RUN pip install -r requirements.txt".to_owned(),
        "ERROR: No matching distribution found for nonexistent-package==9.9".to_owned(),
    ];
    app.cloud.push_scenario(Scenario::BuildFails(lines.clone()));
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");

    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().expect("a failed VM says why");
    assert!(error.contains(&lines[1]), "{error}");
    assert!(
        error.contains("building"),
        "the error names the phase: {error}"
    );
    assert_eq!(view["step"], "building");
    assert_eq!(view["progress"], "failed");
    assert_eq!(view["can_delete"], true);
    let log = strings(&view["log"]);
    assert!(
        log.ends_with(&lines),
        "the log ends with the build's lines: {log:?}"
    );
    assert!(view["jupyter_url"].is_null());

    delete_and_check_clean(&app).await;
}

#[tokio::test]
async fn a_create_server_outage_is_retried() {
    let app = launched_app(TestOptions::default()).await;
    app.cloud.fail_next(Op::CreateServer, 2);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");

    let view = app.wait_for_state("ready").await;
    assert!(view["jupyter_url"].is_string());
    assert_eq!(
        app.cloud.calls(Op::CreateServer),
        3,
        "two failures, then success"
    );
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.cloud.volume_count(), 1);
    let events = app
        .store()
        .recent_events(view["id"].as_str().unwrap().parse().unwrap(), 100)
        .await
        .unwrap();
    let retried = events
        .iter()
        .filter(|e| e.message.contains("(retrying)"))
        .count();
    assert_eq!(retried, 1, "the same outage is told once: {events:#?}");
}

#[tokio::test]
async fn outages_while_booting_and_deleting_are_retried() {
    let app = launched_app(TestOptions {
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        ..TestOptions::default()
    })
    .await;
    app.cloud.fail_next(Op::GetServer, 3);
    app.cloud.fail_next(Op::AttachFloatingIp, 2);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(
        app.cloud.floating_ip_count(),
        1,
        "one floating IP despite the retries"
    );

    app.cloud.fail_next(Op::DeleteServer, 2);
    app.cloud.fail_next(Op::DeleteVolume, 2);
    app.cloud.fail_next(Op::ReleaseFloatingIp, 2);
    delete_and_check_clean(&app).await;
}

#[tokio::test]
async fn without_a_floating_ip_the_vm_is_reachable_on_its_own_address() {
    let app = launched_app(TestOptions {
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        floating_ip_capacity: 0,
        ..TestOptions::default()
    })
    .await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let view = app.wait_for_state("ready").await;
    let warnings = strings(&view["warnings"]);
    assert!(
        warnings.iter().any(|w| w.contains("floating IPs")),
        "{warnings:?}"
    );
    let owned = app
        .cloud
        .list_owned(app.provisioner().installation())
        .await
        .unwrap();
    assert_eq!(view["address"], owned.servers[0].addresses[0].as_str());
    let jupyter = view["jupyter_url"].as_str().unwrap();
    assert_eq!(
        plain_client().get(jupyter).send().await.unwrap().status(),
        StatusCode::OK
    );
    delete_and_check_clean(&app).await;
}

#[tokio::test]
async fn a_server_that_never_boots_times_out() {
    let app = spawn_app_with(TestOptions {
        timings: Timings {
            boot: Duration::from_secs(60),
            ..Timings::quick()
        },
        configure: |config| config.launch.boot_timeout_seconds = NonZero::new(1).unwrap(),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("emil").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().unwrap();
    assert!(error.contains("booting"), "{error}");
    assert!(error.contains("1 s"), "{error}");
    assert_eq!(view["can_delete"], true);
    delete_and_check_clean(&app).await;
}

#[tokio::test]
async fn a_launch_without_progress_times_out_in_its_phase() {
    let app = spawn_app_with(TestOptions {
        // The VM reports `cloning`, then is silent for 60 s.
        timings: Timings {
            clone: Duration::from_secs(60),
            ..Timings::quick()
        },
        configure: |config| config.launch.clone_timeout_seconds = NonZero::new(1).unwrap(),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("fritz").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().unwrap();
    assert!(error.contains("cloning"), "{error}");
    assert!(error.contains("timed out after 1 s"), "{error}");
    assert!(error.contains("no progress from the VM"), "{error}");
    assert_eq!(view["step"], "cloning");
    delete_and_check_clean(&app).await;
}

#[tokio::test]
async fn a_failed_clone_is_reported_as_a_clone_failure() {
    // launch.sh reports `cloning`, and when `git clone` fails it reports
    // `failed` with "git clone failed" as its last log line. The simulated
    // VM cannot fail a clone, so the test sends that report itself, with the
    // VM's own secret, while the simulated VM is still cloning.
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        timings: Timings {
            clone: Duration::from_secs(60),
            ..Timings::quick()
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("gus").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    app.wait_for_view(&app.browser, "the cloning report", |v| {
        v["progress"] == "cloning"
    })
    .await;
    let data = app.launch_data(0).await;
    let report = serde_json::json!({
        "vm": data.vm_id,
        "seq": 2,
        "phase": "failed",
        "port": null,
        "log": [
            "fatal: repository 'https://github.com/binder-examples/requirements/' not found",
            "git clone failed",
        ],
    });
    let response = post_callback(&app, Some(&data.callback_secret), report.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().unwrap();
    assert!(error.contains("git clone failed"), "{error}");
    assert!(
        error.contains("cloning"),
        "the error names the phase that failed: {error}"
    );
    assert_eq!(
        view["step"], "cloning",
        "the progress bar stops at the clone"
    );
}
