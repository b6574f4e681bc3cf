//! A GET never launches, deletes or registers (link previews, prefetchers
//! and crawlers open links); a POST needs the session's CSRF token.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use std::time::Duration;

/// Every GET route, with parameters that would launch if a GET could.
fn get_routes(app: &TestApp) -> Vec<String> {
    vec![
        "/".into(),
        "/VM_start".into(),
        "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fbinder-examples%2Frequirements&ref=main"
            .into(),
        "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fother%2Frepo&labpath=x.ipynb".into(),
        "/VM_status".into(),
        "/VM_delete".into(),
        "/VM_delete?csrf=x".into(),
        "/api/vm".into(),
        app.registration_path(),
        "/login".into(),
        "/login?next=/VM_delete".into(),
        "/healthz".into(),
        "/v2/gh/binder-examples/requirements/main".into(),
        "/v2/gh/binder-examples/requirements".into(),
        "/v2/gl/group%2Fproject/main".into(),
        "/logout".into(),
        "/login/demo".into(),
        "/api/vm/callback".into(),
    ]
}

async fn get_everything(app: &TestApp) {
    for path in get_routes(app) {
        let response = app.get(&path).await;
        assert!(
            !response.status().is_server_error(),
            "GET {path} answered {}",
            response.status()
        );
    }
    // The event stream too (its headers are enough).
    let events = app.get("/api/vm/events").await;
    assert!(!events.status().is_server_error());
    drop(events);
    // Leave the background driver time to act on anything recorded.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn gets_never_launch_or_delete() {
    let app = spawn_app().await;
    app.login_registered("gale").await;

    // Without a VM: no GET creates one.
    get_everything(&app).await;
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert!(app.store().list_vms(true).await.unwrap().is_empty());

    // With a running VM: no GET deletes it, or starts a second.
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let ready = app.wait_for_state("ready").await;
    get_everything(&app).await;
    let view = app.api_vm_json().await;
    assert_eq!(view["state"], "ready");
    assert_eq!(view["id"], ready["id"]);
    assert_eq!(view["repo"], REPO);
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_eq!(app.cloud.calls(Op::DeleteServer), 0);
    assert_eq!(app.store().list_vms(true).await.unwrap().len(), 1);

    // And the GETs did not log anyone out.
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("Log out"), "{home}");
}

#[tokio::test]
async fn the_deletion_page_only_asks() {
    let app = spawn_app().await;
    app.login_registered("hugo").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;

    let (status, page) = app.get_page("/VM_delete").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Delete your VM?"), "{page}");
    assert!(
        page.contains("method=\"post\" action=\"/VM_delete\""),
        "{page}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.api_vm_json().await["state"], "ready");
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.cloud.calls(Op::DeleteServer), 0);
}

#[tokio::test]
async fn opening_the_registration_link_does_not_register() {
    let app = spawn_app().await;
    app.login("ivan").await;
    for _ in 0..2 {
        let (status, page) = app.get_page(&app.registration_path()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Join this stackbinder"), "{page}");
        assert!(
            !page.contains(app.registration_secret()),
            "the page does not show the secret"
        );
    }
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.api_vm().await.status(), StatusCode::FORBIDDEN);

    // Not logged in: the link leads to the login and registers nobody.
    let anonymous = app.new_browser();
    let response = anonymous.get(&app.registration_path()).await;
    assert!(
        location(&response).starts_with("/login?next="),
        "{response:?}"
    );
}

#[tokio::test]
async fn a_wrong_registration_secret_is_not_found() {
    let app = spawn_app().await;
    app.login("judy").await;
    let secret = app.registration_secret().to_owned();
    let mut near_miss = secret.clone();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == 'A' { 'B' } else { 'A' });
    let csrf = app.csrf().await;
    for wrong in [
        "wrong".to_owned(),
        near_miss,
        format!("{secret}x"),
        String::new(),
    ] {
        let path = format!("/register/{wrong}");
        assert_eq!(
            app.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
        let response = app.post_form(&path, &[("csrf", &csrf)]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    assert_eq!(
        app.get("/VM_start").await.status(),
        StatusCode::FORBIDDEN,
        "still not registered"
    );
}

#[tokio::test]
async fn posts_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let stranger = app.new_browser();
    stranger.login("mallory").await;
    let foreign_csrf = stranger.csrf().await;

    // Logging in.
    let response = app
        .post_form("/login/demo", &[("login", "kim"), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, home) = app.get_page("/").await;
    assert!(!home.contains("Log out"), "not logged in: {home}");
    app.login("kim").await;

    // Registering.
    let path = app.registration_path();
    for form in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", "forged")],
        vec![("csrf", foreign_csrf.as_str())],
    ] {
        let response = app.post_form(&path, &form).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "register with {form:?}"
        );
    }
    assert_eq!(
        app.get("/VM_start").await.status(),
        StatusCode::FORBIDDEN,
        "still not registered"
    );
    assert_eq!(app.register().await.status(), StatusCode::OK);

    // Launching.
    for csrf in [None, Some(""), Some("forged"), Some(foreign_csrf.as_str())] {
        let mut form = vec![("giturl", REPO), ("ref", "main")];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let response = app.post_form("/VM_start", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "launch with csrf {csrf:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);

    // Deleting.
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;
    for form in [
        vec![],
        vec![("csrf", "forged")],
        vec![("csrf", foreign_csrf.as_str())],
    ] {
        let response = app.post_form("/VM_delete", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "delete with {form:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.api_vm_json().await["state"], "ready");
    assert_eq!(app.cloud.calls(Op::DeleteServer), 0);
    assert_eq!(app.cloud.server_count(), 1);

    // Logging out.
    for form in [
        vec![],
        vec![("csrf", "forged")],
        vec![("csrf", foreign_csrf.as_str())],
    ] {
        let response = app.post_form("/logout", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "logout with {form:?}"
        );
    }
    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::OK,
        "still logged in"
    );
    let csrf = app.csrf().await;
    assert_is_redirect_to(&app.post_form("/logout", &[("csrf", &csrf)]).await, "/");
    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::UNAUTHORIZED,
        "logged out"
    );
    assert_eq!(
        app.cloud.server_count(),
        1,
        "logging out leaves the VM alone"
    );
}
