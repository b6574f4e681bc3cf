//! Credentials the OpenStack way: one token, shared and renewed.

use crate::fake_openstack::{Fault, PASSWORD};
use crate::helpers::*;
use stackbinder::cloud::{Cloud, CloudError};
use std::time::Duration;

#[tokio::test]
async fn password_auth_gets_one_token_for_many_calls() {
    let env = setup().await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    for _ in 0..10 {
        env.cloud.get_server(&id).await.unwrap();
    }
    let w = env.fake.world();
    assert_eq!(w.auths, ["password"]);
    assert!(w.calls.len() > 15, "{} calls", w.calls.len());
}

#[tokio::test]
async fn application_credentials_work() {
    let env = setup_with(|_| {}, true).await;
    env.cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    assert_eq!(env.fake.world().auths, ["application_credential"]);
}

#[tokio::test]
async fn concurrent_first_calls_authenticate_once() {
    let env = setup().await;
    let calls = (0..6).map(|_| env.cloud.get_server("nope"));
    for r in futures_util::future::join_all(calls).await {
        assert!(r.unwrap().is_none());
    }
    assert_eq!(env.fake.world().auths.len(), 1);
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed_once_not_per_call() {
    // Arrange: osauth renews a token with less than 10 minutes left, so a
    // token of 10 min + 1.5 s is due for renewal 1.5 s into the run.
    let env = setup().await;
    env.fake.world().token_ttl = Duration::from_secs(600) + Duration::from_millis(1500);
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    // Only the first token is short-lived; its renewal lives an hour.
    env.fake.world().token_ttl = Duration::from_secs(3600);

    // Act: keep calling for 3 s.
    let start = std::time::Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(3) {
        env.cloud
            .get_server(&id)
            .await
            .expect("every call succeeds");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert
    let w = env.fake.world();
    assert_eq!(w.auths.len(), 2, "one renewal after {calls} calls");
    assert_eq!(
        w.rejected_tokens, 0,
        "no call went out with an expired token"
    );
}

#[tokio::test]
async fn wrong_credentials_say_where_to_look_and_are_not_retried() {
    let env = setup().await;
    let yaml = env.fake.clouds_yaml_password().replace(PASSWORD, "wrong");
    std::fs::write(&env.clouds_yaml, yaml).unwrap();
    let cloud = cloud_for(&env.config, &env.clouds_yaml);
    let err = cloud.get_server("x").await.unwrap_err();
    let CloudError::Rejected(message) = &err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(message.contains("clouds.yaml"), "{message}");
    assert_eq!(env.fake.calls().len(), 1, "one refused auth, no retry");
}

#[tokio::test]
async fn debug_output_holds_neither_password_nor_token() {
    let env = setup().await;
    env.cloud.get_server("x").await.unwrap();
    let shown = format!("{:?}", env.cloud);
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains("gAAAAAB"), "{shown}");
    assert!(shown.contains("fake"), "{shown}");
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_refused_call_repeated() {
    let env = setup().await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    env.fake.world().revoke_tokens();

    let server = env.cloud.get_server(&id).await.expect("the call succeeds");
    assert!(server.is_some());
    env.cloud
        .delete_server(&id)
        .await
        .expect("and so do the next ones");

    let w = env.fake.world();
    assert_eq!(w.auths, ["password", "password"], "one new token");
    assert_eq!(w.rejected_tokens, 1, "only the first call met the 401");
    let gets = w
        .calls
        .iter()
        .filter(|c| c.method == axum::http::Method::GET && c.path == format!("servers/{id}"))
        .count();
    assert_eq!(gets, 2, "the GET refused with 401, then the same GET again");
}

#[tokio::test]
async fn calls_that_meet_a_revoked_token_together_authenticate_once() {
    let env = setup().await;
    env.cloud.get_server("warm-up").await.unwrap();
    env.fake.world().revoke_tokens();

    let calls = (0..6).map(|_| env.cloud.get_server("nope"));
    for r in futures_util::future::join_all(calls).await {
        assert!(r.expect("every call succeeds").is_none());
    }
    assert_eq!(env.fake.world().auths.len(), 2, "one renewal for six 401s");
}

/// Keystone's answer to a token it no longer knows.
fn unauthorized(method: axum::http::Method, path: &'static str) -> Fault {
    Fault {
        method,
        path,
        status: 401,
        body: serde_json::json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}),
        retry_after: None,
        times: 1,
    }
}

#[tokio::test]
async fn a_create_refused_with_401_is_sent_again_once_and_makes_one_server() {
    // A 401 comes from the token check in front of the API, before Nova
    // acts: sending the create again cannot make a second server. (The
    // token goes bad between the quota read and the create.)
    let env = setup().await;
    env.cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    env.fake
        .inject(unauthorized(axum::http::Method::POST, "servers"));

    env.cloud
        .create_server(&spec(&env.config, "bob"))
        .await
        .expect("the create succeeds with the new token");

    assert_eq!(env.fake.server_count(), 2, "one server each");
    assert_eq!(
        env.fake
            .find_calls(axum::http::Method::POST, "servers")
            .len(),
        3,
        "alice's, bob's refused once, bob's sent once more"
    );
    assert_eq!(env.fake.world().auths.len(), 2);
}

#[tokio::test]
async fn credentials_that_keystone_now_refuses_fail_clearly_after_one_try() {
    // The token is revoked and the password changed: the one renewal is
    // refused, and the call says so instead of looping.
    let env = setup().await;
    env.cloud.get_server("warm-up").await.unwrap();
    env.fake.world().revoke_tokens();
    env.fake
        .inject(unauthorized(axum::http::Method::POST, "auth/tokens"));

    let err = env.cloud.get_server("x").await.unwrap_err();
    assert!(matches!(err, CloudError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("clouds.yaml"), "{err}");
    let keystone_posts = env
        .fake
        .find_calls(axum::http::Method::POST, "auth/tokens")
        .len();
    assert_eq!(keystone_posts, 2, "the first token, one refused renewal");

    // Keystone takes the credentials again: the next call gets a token.
    env.cloud
        .get_server("x")
        .await
        .expect("the next call authenticates afresh");
    assert_eq!(env.fake.world().auths.len(), 2);
}
