//! A claimed VM's readiness does not wait for the pool's own cloud calls.

use super::{alices_vm, spawn};
use crate::helpers::jupyter_stand_in;
use axum::http::Method;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn a_claimed_vms_readiness_probe_waited_for_the_pools_refill() {
    // Arrange: a ready pool VM; from now on Nova answers a server create
    // only after two minutes, so the refill the claim sets off hangs until
    // the client gives up on it (`request_timeout`, 5 s here).
    let app = spawn(|c| c.pool.size = 1).await;
    app.fill(1).await;
    app.fake
        .world()
        .late_answers
        .push((Method::POST, "servers".into(), Duration::from_secs(120)));

    // Act: alice claims it; the VM gets its job and reports ready, its
    // Jupyter answering.
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    let (boot, status, job) = app.answer_of(claimed.id).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let secret = job["callback_secret"].as_str().expect("a rotated secret");
    let (port, probes) = jupyter_stand_in("alice").await;
    let report = json!({"vm": claimed.id, "seq": 1, "phase": "ready", "port": port, "log": []});
    let answered = reqwest::Client::new()
        .post(boot.callback_url.as_str())
        .bearer_auth(secret)
        .json(&report)
        .send()
        .await
        .unwrap()
        .status();
    assert!(answered.is_success(), "{answered}");

    // Assert: she has her Jupyter while the refill still waits for Nova,
    // not once the client gave up on it.
    app.web.wait_for("ready", Duration::from_millis(2500)).await;
    assert!(probes.load(Ordering::SeqCst) >= 1);
    let refill = app.creates().len();
    assert_eq!(
        refill, 2,
        "the refill's create was sent (and is unanswered)"
    );
}
