//! A VM is ready when Jupyter answers, not when the VM says so; and its
//! link, which carries the token, is for its owner's eyes only.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Scenario;
use std::num::NonZero;
use std::time::Duration;

#[tokio::test]
async fn a_vm_that_says_ready_but_does_not_answer_is_never_ready() {
    // Arrange: the driver is stepped by the test; the VM's word alone
    // must not be enough.
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |config| config.launch.start_timeout_seconds = NonZero::new(1).unwrap(),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("uma").await;
    app.cloud.push_scenario(Scenario::JupyterNeverAnswers);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    app.wait_for_view(&app.browser, "the VM's ready report", |v| {
        v["progress"] == "ready"
    })
    .await;

    // Act: the driver probes Jupyter at every step.
    for _ in 0..3 {
        app.step().await;
        let view = app.api_vm_json().await;
        assert_eq!(view["state"], "building", "{view:#}");
        assert!(
            view["jupyter_url"].is_null(),
            "no link before Jupyter answers"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Assert: when the start phase's time is up, the launch fails and
    // says why.
    let view = app.wait_for_state("failed").await;
    let error = view["error"].as_str().unwrap();
    assert!(
        error.contains("says Jupyter runs, but it does not answer"),
        "{error}"
    );
    assert!(view["jupyter_url"].is_null());
}

#[tokio::test]
async fn only_the_owner_ever_sees_the_jupyter_token() {
    let app = spawn_app().await;
    app.login_registered("vera").await;
    let other = app.new_browser();
    other.login_registered("walt").await;
    assert_is_redirect_to(
        &app.launch(REPO, "main", "lab/tree/a.ipynb").await,
        "/VM_status",
    );
    let view = app.wait_for_state("ready").await;
    let token = app.launch_data(0).await.jupyter_token;
    let link = view["jupyter_url"].as_str().unwrap();
    assert!(
        link.ends_with(&format!("/lab/tree/a.ipynb?token={token}")),
        "{link}"
    );
    let (_, status_page) = app.get_page("/VM_status").await;
    assert!(
        status_page.contains(&token),
        "the owner's page has the link"
    );

    // Another user, a visitor without a session, and the VM's own event
    // log never show it.
    let visitor = app.new_browser();
    for (who, browser) in [("another user", &other), ("a visitor", &visitor)] {
        for path in ["/", "/VM_status", "/api/vm", "/VM_delete", "/healthz"] {
            let (_, page) = browser.get_page(path).await;
            assert!(!page.contains(&token), "{who} sees the token on {path}");
        }
    }
    assert_eq!(other.api_vm().await.status(), StatusCode::NOT_FOUND);
    let events = app
        .store()
        .recent_events(app.launch_data(0).await.vm_id, 1000)
        .await
        .unwrap();
    for event in events {
        assert!(!event.message.contains(&token), "{}", event.message);
    }
}
