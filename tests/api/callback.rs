//! `POST /api/vm/callback`: only the VM itself, with its own secret, can
//! report progress, only forward, and only while it is launching.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::domain::VmId;

fn report(vm: &str, seq: i64, phase: Option<&str>, log: &[&str]) -> String {
    json!({ "vm": vm, "seq": seq, "phase": phase, "port": null, "log": log }).to_string()
}

#[tokio::test]
async fn a_callback_without_valid_credentials_is_refused() {
    let app = spawn_app().await;
    let vm = VmId::new().to_string();
    let body = report(&vm, 1, Some("cloning"), &["hello"]);

    let response = post_callback(&app, None, body.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post_callback(&app, Some("not-the-secret"), body.clone()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let basic = plain_client()
        .post(app.url("/api/vm/callback"))
        .basic_auth("vm", Some("secret"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    for malformed in [
        "{not json",
        "{}",
        "[]",
        "{\"vm\": \"not-a-uuid\", \"seq\": 1}",
    ] {
        let response = post_callback(&app, Some("whatever"), malformed).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{malformed}");
        let body: Value = response.json().await.expect("a JSON error");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("not a progress report"),
            "{body}"
        );
    }

    let huge = report(&vm, 1, None, &[&"x".repeat(300 * 1024)]);
    let response = post_callback(&app, Some("whatever"), huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_vms_own_secret_reports_forward_only_and_only_while_launching() {
    // The test steps the provisioner itself: after one step the VM is
    // `booting` in the store, and stays so while the simulated VM reports.
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("sam").await;
    let other = app.new_browser();
    other.login_registered("tess").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    assert_is_redirect_to(&other.launch(REPO, "dev", "").await, "/VM_status");
    app.step().await;
    assert_eq!(app.api_vm_json().await["state"], "booting");
    assert_eq!(other.api_vm_json().await["state"], "booting");

    let created = app.cloud.created();
    assert_eq!(created.len(), 2);
    let both = [app.launch_data(0).await, app.launch_data(1).await];
    let mine = both.iter().find(|d| d.git_ref == "main").unwrap().clone();
    let theirs = both.iter().find(|d| d.git_ref == "dev").unwrap().clone();
    let vm = mine.vm_id.to_string();
    assert_eq!(app.api_vm_json().await["id"], vm.as_str());

    // The simulated VM reports all the way to `ready` (seq 1 to 4).
    let view = app
        .wait_for_view(&app.browser, "the VM's ready report", |v| {
            v["progress"] == "ready"
        })
        .await;
    assert_eq!(view["state"], "booting", "the test did not step further");

    // A replayed or older report changes nothing.
    for seq in [4, 1] {
        let response = post_callback(
            &app,
            Some(&mine.callback_secret),
            report(&vm, seq, Some("cloning"), &["replayed"]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>().await.unwrap()["status"],
            "stale",
            "seq {seq}"
        );
    }
    let view = app.api_vm_json().await;
    assert_eq!(view["progress"], "ready");
    assert!(!strings(&view["log"]).contains(&"replayed".to_owned()));

    // A newer one is applied; its log lines show; it cannot go backwards.
    let response = post_callback(
        &app,
        Some(&mine.callback_secret),
        report(&vm, 5, Some("cloning"), &["hello from the VM"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "applied");
    let view = app.api_vm_json().await;
    assert_eq!(view["progress"], "ready", "progress only moves forward");
    assert_eq!(
        strings(&view["log"]).last().map(String::as_str),
        Some("hello from the VM")
    );

    // One VM's secret does not speak for another VM.
    let their_vm = theirs.vm_id.to_string();
    let response = post_callback(
        &app,
        Some(&mine.callback_secret),
        report(&their_vm, 100, Some("failed"), &["forged"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post_callback(
        &app,
        Some(&theirs.callback_secret),
        report(&vm, 100, Some("failed"), &["forged"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post_callback(
        &app,
        Some(&mine.callback_secret),
        report(&VmId::new().to_string(), 100, None, &[]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!strings(&other.api_vm_json().await["log"]).contains(&"forged".to_owned()));
    assert_ne!(other.api_vm_json().await["progress"], "failed");
    assert_ne!(app.api_vm_json().await["progress"], "failed");

    // A malformed report with the right secret is a 400, and changes nothing.
    let response = post_callback(&app, Some(&mine.callback_secret), "{\"vm\":").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A report keeps at most its last 200 lines, each at most 1000 bytes.
    let many: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    let long = "é".repeat(1000);
    let mut lines: Vec<&str> = many.iter().map(String::as_str).collect();
    lines.push(&long);
    let response = post_callback(
        &app,
        Some(&mine.callback_secret),
        report(&vm, 6, None, &lines),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored = app.store().log_tail(mine.vm_id, 10_000).await.unwrap();
    let stored: Vec<&str> = stored.iter().map(|e| e.message.as_str()).collect();
    assert!(
        !stored.contains(&"line 100"),
        "only the last 200 lines are kept"
    );
    assert!(stored.contains(&"line 101"));
    assert!(stored.contains(&"line 299"));
    let kept = stored.last().unwrap();
    assert!(
        kept.len() <= 1000 && kept.len() >= 998,
        "a long line is cut: {} bytes",
        kept.len()
    );
    assert!(long.starts_with(kept));

    // Once the VM is being deleted, reports are refused.
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    let response = post_callback(
        &app,
        Some(&mine.callback_secret),
        report(&vm, 7, Some("ready"), &["too late"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let view = app.api_vm_json().await;
    assert_eq!(view["state"], "deleting");
    assert!(!strings(&view["log"]).contains(&"too late".to_owned()));
}

/// Launch for `sam` and step once: the VM is `booting` in the store and
/// its simulated VM reports up to `ready`; the test steps no further.
async fn launched_and_reported(app: &TestApp) -> stackbinder::cloud_init::LaunchData {
    app.login_registered("sam").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    app.wait_for_view(&app.browser, "the VM's ready report", |v| {
        v["progress"] == "ready"
    })
    .await;
    app.launch_data(0).await
}

#[tokio::test]
async fn a_vm_that_reports_too_fast_is_told_to_slow_down() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    })
    .await;
    let data = launched_and_reported(&app).await;
    let vm = data.vm_id.to_string();

    let mut statuses = Vec::new();
    for seq in 10..110 {
        let response = post_callback(
            &app,
            Some(&data.callback_secret),
            report(&vm, seq, None, &["busy"]),
        )
        .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
    }

    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok + limited, statuses.len(), "{statuses:?}");
    assert!(ok >= 50, "a burst of reports goes through: {ok}");
    assert!(limited >= 10, "a flood is limited: {limited} of 100");
    // Forged reports are refused as such, not counted against the VM.
    let forged = post_callback(&app, Some("wrong"), report(&vm, 500, None, &[])).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_vms_log_is_capped_but_its_failure_report_is_kept() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    })
    .await;
    let data = launched_and_reported(&app).await;
    let vm = data.vm_id.to_string();
    let cap = stackbinder::domain::report::MAX_LOG_LINES_PER_VM as usize;
    let lines: Vec<String> = (0..200).map(|i| format!("chatter {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();

    for seq in 10..(10 + cap as i64 / 200 + 2) {
        let response = post_callback(
            &app,
            Some(&data.callback_secret),
            report(&vm, seq, None, &lines),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "seq {seq}");
    }
    let response = post_callback(
        &app,
        Some(&data.callback_secret),
        report(&vm, 1000, Some("failed"), &["the reason it failed"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    let log = app.store().log_tail(data.vm_id, 100_000).await.unwrap();
    assert_eq!(log.len(), cap + 1, "the cap, plus the failure report");
    assert_eq!(log.last().unwrap().message, "the reason it failed");
    let events = app
        .store()
        .recent_events(data.vm_id, 100_000)
        .await
        .unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.message.contains("log lines; further lines are not kept"))
        .collect();
    assert_eq!(warnings.len(), 1, "the user is told once");
}
