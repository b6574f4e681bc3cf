//! What a VM sends, hardened: forged reports cannot crowd out real ones,
//! and a VM's log lines are stored without terminal control sequences.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::cloud::simulated::Timings;
use stackbinder::cloud_init::LaunchData;
use stackbinder::domain::VmId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The forger and the VM are told apart by address, as behind a proxy.
const FORGER: &str = "203.0.113.9";
const VM_ADDRESS: &str = "198.51.100.7";

/// An app whose simulated VM never boots, so the test alone speaks for it,
/// with one launch recorded and its server created (state `booting`).
async fn a_vm_the_test_speaks_for() -> (TestApp, LaunchData) {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        timings: Timings {
            boot: Duration::from_secs(3600),
            ..Timings::quick()
        },
        configure: |c| c.server.trust_forwarded_for = true,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("sam").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    assert_eq!(app.api_vm_json().await["state"], "booting");
    let data = app.launch_data(0).await;
    (app, data)
}

async fn send_report(
    client: &reqwest::Client,
    app: &TestApp,
    from: &str,
    secret: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(app.url("/api/vm/callback"))
        .header("x-forwarded-for", from)
        .bearer_auth(secret)
        .json(body)
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reports_do_not_starve_a_real_vms_reports() {
    // Arrange: a VM, and a forger sending reports with wrong secrets from
    // 32 connections for as long as the test runs.
    let (app, data) = a_vm_the_test_speaks_for().await;
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let forged = Arc::new(AtomicUsize::new(0));
    let held_off = Arc::new(AtomicUsize::new(0));
    let client = plain_client();
    let mut forgers = Vec::new();
    for _ in 0..32 {
        let (app, stop, forged, held_off, client) = (
            app.clone(),
            stop.clone(),
            forged.clone(),
            held_off.clone(),
            client.clone(),
        );
        forgers.push(tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let body = json!({ "vm": VmId::new(), "seq": seq, "phase": "failed",
                                   "port": null, "log": ["forged"] });
                let Ok(response) = send_report(&client, &app, FORGER, "guess", &body).await else {
                    continue;
                };
                forged.fetch_add(1, Ordering::Relaxed);
                if response.status() == StatusCode::TOO_MANY_REQUESTS {
                    assert!(response.headers().contains_key("retry-after"));
                    held_off.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // The flood is on once the forger is being told to slow down.
    let deadline = tokio::time::Instant::now() + WAIT;
    while held_off.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forger was never slowed down ({} forged reports)",
            forged.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Act: the real VM reports, during the flood, from its own address.
    let mut statuses = Vec::new();
    for seq in 1..=20 {
        let (phase, port) = if seq == 20 {
            (Some("ready"), Some(8888))
        } else {
            (None, None)
        };
        let body = json!({ "vm": data.vm_id, "seq": seq, "phase": phase, "port": port,
                           "log": [format!("line {seq}")] });
        let response = send_report(&client, &app, VM_ADDRESS, &data.callback_secret, &body)
            .await
            .expect("the report is sent");
        statuses.push(response.status());
    }
    stop.store(true, Ordering::Relaxed);
    for forger in forgers {
        forger.await.unwrap();
    }

    // Assert: every real report was taken, and the `ready` applied.
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "the real VM's reports during {} forged ones: {statuses:?}",
        forged.load(Ordering::Relaxed)
    );
    let view = app.api_vm_json().await;
    assert_eq!(view["progress"], "ready", "{view:#}");
    assert!(!strings(&view["log"]).contains(&"forged".to_owned()));
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_held_off_but_others_are_not() {
    let (app, data) = a_vm_the_test_speaks_for().await;
    let client = plain_client();
    let forged = json!({ "vm": data.vm_id, "seq": 1, "phase": "failed", "port": null, "log": [] });

    // Wrong secrets, one after another, until the address is held off.
    let mut refused = 0;
    loop {
        let response = send_report(&client, &app, FORGER, "guess", &forged)
            .await
            .unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("a wrong secret answered {other}"),
        }
        assert!(refused < 40, "never held off after {refused} wrong secrets");
    }
    assert!(refused >= 1, "some wrong secrets are refused first");
    // From then on every attempt is held off (at once: each is held back a
    // moment before its 429).
    let attempts = (0..10).map(|_| send_report(&client, &app, FORGER, "guess", &forged));
    for response in futures_util::future::join_all(attempts).await {
        assert_eq!(response.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let held_off = send_report(&client, &app, FORGER, &data.callback_secret, &forged)
        .await
        .unwrap();
    let wait: u64 = held_off.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let report = json!({ "vm": data.vm_id, "seq": 1, "phase": "cloning", "port": null, "log": [] });
    let response = send_report(&client, &app, VM_ADDRESS, &data.callback_secret, &report)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.api_vm_json().await["progress"], "cloning");
}

/// Lines as a repository's build can print them: colours, a cursor dance,
/// a progress bar redrawn with CR, a bell, NUL, a title change (OSC), C1
/// controls, a tab.
const HOSTILE_LINES: [&str; 8] = [
    "\u{1b}[31mred\u{1b}[0m and \u{1b}[1;32mbold green\u{1b}[m",
    "Downloading 10%\r\u{1b}[2KDownloading 100%",
    "bell\u{7} and nul\u{0} and backspace\u{8}x",
    "\u{1b}]0;owned title\u{7}after the title",
    "\u{1b}]8;;https://evil.example\u{1b}\\link\u{1b}]8;;\u{1b}\\ text",
    "c1 csi \u{9b}2J and next line \u{85} done",
    "col1\tcol2",
    "\u{1b}c\u{1b}(0reset",
];

/// What each of `HOSTILE_LINES` must be stored as.
const STORED_LINES: [&str; 8] = [
    "red and bold green",
    "Downloading 10%Downloading 100%",
    "bell and nul and backspacex",
    "after the title",
    "link text",
    "c1 csi  and next line  done",
    "col1\tcol2",
    "reset",
];

fn has_control(line: &str) -> bool {
    line.chars().any(|c| c.is_control() && c != '\t')
}

#[tokio::test]
async fn log_lines_from_a_vm_are_stored_without_control_characters() {
    // Arrange
    let (app, data) = a_vm_the_test_speaks_for().await;

    // Act: the VM reports hostile lines over HTTP.
    let report = json!({ "vm": data.vm_id, "seq": 1, "phase": "building", "port": null,
                         "log": HOSTILE_LINES });
    let response = post_callback(&app, Some(&data.callback_secret), report.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Assert: the status page's data, the store and `vm show` hold the
    // text without a single control character but tabs.
    let view = app.api_vm_json().await;
    assert_eq!(strings(&view["log"]), STORED_LINES);
    let stored = app.store().log_tail(data.vm_id, 100).await.unwrap();
    assert!(stored.iter().all(|e| !has_control(&e.message)));
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["vm", "show", "sam"])
        .env("STACKBINDER_DATABASE__URL", &app.config.database.url)
        .env_remove("STACKBINDER_CONFIG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8(shown.stdout).unwrap();
    assert!(shown.status.success(), "{stdout}");
    assert!(stdout.contains("bold green"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r') && !stdout.contains('\u{9b}'),
        "vm show prints no escape: {stdout:?}"
    );
}
