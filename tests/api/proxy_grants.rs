//! The proxy remembers a session it has checked for a moment, so that a
//! busy notebook costs no query per request; nothing that takes access
//! away may hide behind that: a logout, a deletion or a revocation in this
//! process applies to the very next request, one made by another process
//! (the CLI, another replica) within the recheck time.

use crate::helpers::{Browser, REPO, TestApp, plain_client, spawn_app};
use reqwest::StatusCode;
use stackbinder::store::Store;
use std::time::{Duration, Instant};

/// `ada` logged in, her VM ready, and one proxied request already let
/// through (so her session's grant is remembered).
/// Returns the path of a proxied request (with Jupyter's token).
async fn ada_in_jupyter() -> (TestApp, Browser, String) {
    let app = spawn_app().await;
    let ada = app.new_browser();
    ada.login_registered("ada").await;
    ada.launch(REPO, "", "").await;
    app.wait_for_state_of(&ada, "ready").await;
    let path = format!(
        "/user/ada/api/status?token={}",
        app.launch_data(0).await.jupyter_token
    );
    assert_eq!(ada.get(&path).await.status(), StatusCode::OK);
    assert_eq!(ada.get(&path).await.status(), StatusCode::OK, "again");
    (app, ada, path)
}

#[tokio::test]
async fn a_logged_out_session_reaches_jupyter_no_more_on_the_next_request() {
    let (_app, ada, path) = ada_in_jupyter().await;
    let cookie = ada.session_cookie().expect("logged in"); // name=value
    let csrf = ada.csrf().await;
    let out = ada.post_form("/logout", &[("csrf", &csrf)]).await;
    assert!(out.status().is_redirection(), "{}", out.status());

    // The old cookie, replayed by someone who kept it.
    let replay = plain_client()
        .get(ada.url(&path))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_ne!(replay.status(), StatusCode::OK, "a logged-out cookie");
}

#[tokio::test]
async fn a_vm_being_deleted_is_not_reached_on_the_next_request() {
    let (_app, ada, path) = ada_in_jupyter().await;
    let deleted = ada.delete_vm().await;
    assert!(deleted.status().is_redirection(), "{}", deleted.status());
    assert_eq!(ada.get(&path).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_revocation_by_another_process_reaches_the_proxy_within_the_recheck_time() {
    let (app, ada, path) = ada_in_jupyter().await;
    // Another process on the same database: the CLI's `users revoke`.
    let other = Store::connect(&app.config.database.url).await.unwrap();
    let login = stackbinder::domain::Login::parse("ada").unwrap();
    other.revoke_login(&login, "admin").await.unwrap();
    other.close().await;

    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        let status = ada.get(&path).await.status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(status, StatusCode::OK, "until the grant is checked again");
        assert!(Instant::now() < limit, "the revocation never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
