//! Logging in and out: a new session at login, a dead one at logout, no
//! way off the site through `next`, and no demo login outside the demo.

use crate::helpers::*;
use reqwest::StatusCode;
use url::Url;

#[tokio::test]
async fn logging_in_starts_a_new_session() {
    let app = spawn_app().await;
    let (_, _) = app.get_page("/login").await;
    let before = app
        .session_cookie()
        .expect("a visitor has a session for the CSRF token");
    app.login("uma").await;
    let after = app.session_cookie().expect("a session after login");
    assert_ne!(
        before, after,
        "the session id changes at login (no fixation)"
    );

    // The session id from before the login does not carry the login.
    let response = plain_client()
        .get(app.url("/api/vm"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logging_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.login_registered("vera").await;
    let cookie = app.session_cookie().unwrap();
    let with_old_cookie = || async {
        plain_client()
            .get(app.url("/api/vm"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        with_old_cookie().await,
        StatusCode::NOT_FOUND,
        "logged in, no VM yet"
    );

    let csrf = app.csrf().await;
    assert_is_redirect_to(&app.post_form("/logout", &[("csrf", &csrf)]).await, "/");
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        with_old_cookie().await,
        StatusCode::UNAUTHORIZED,
        "a copied cookie is dead too"
    );
}

#[tokio::test]
async fn after_login_next_stays_on_this_site() {
    for (next, expected) in [
        ("/VM_status", "/VM_status"),
        (
            "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fa%2Fb",
            "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fa%2Fb",
        ),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("evil.example", "/"),
    ] {
        let app = spawn_app().await;
        let csrf = app.csrf().await;
        let response = app
            .post_form(
                "/login/demo",
                &[("csrf", &csrf), ("login", "wendy"), ("next", next)],
            )
            .await;
        assert_is_redirect_to(&response, expected);

        // A logged-in visitor of /login?next=... is sent on, also only locally.
        let response = app
            .client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert_is_redirect_to(&response, expected);
    }
}

#[tokio::test]
async fn a_bad_demo_name_is_refused_with_a_message() {
    let app = spawn_app().await;
    for name in ["", "-x", "a b", "a;b", "$(id)", &"x".repeat(40)] {
        let csrf = app.csrf().await;
        let response = app
            .post_form(
                "/login/demo",
                &[("csrf", &csrf), ("login", name), ("next", "/")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name:?}");
        let page = unescape(&response.text().await.unwrap());
        assert!(page.contains("Pick another name"), "{page}");
    }
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.store().list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn with_github_login_there_is_no_demo_login() {
    let app = spawn_app_with(TestOptions {
        github_login: true,
        ..TestOptions::default()
    })
    .await;

    // /login goes to GitHub, with state and PKCE, back to our callback.
    let response = app.get("/login?next=/VM_status").await;
    assert!(response.status().is_redirection());
    let to = Url::parse(&location(&response)).unwrap();
    assert_eq!(to.host_str(), Some("github.com"));
    assert_eq!(to.path(), "/login/oauth/authorize");
    let query: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "stackbinder-test-client");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/login/callback", app.base)
    );
    assert!(query["state"].len() >= 16);
    assert_eq!(query["code_challenge_method"], "S256");

    // The demo form does not log anyone in. (No page shows an anonymous
    // visitor a CSRF token here, so this is refused one way or another.)
    let response = app
        .post_form(
            "/login/demo",
            &[("csrf", "guessed"), ("login", "xavier"), ("next", "/")],
        )
        .await;
    assert!(
        matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
        ),
        "{}",
        response.status()
    );
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.store().list_users().await.unwrap().is_empty());

    // A callback whose state we did not send is refused without asking GitHub.
    let response = app.get("/login/callback?code=abc&state=forged").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("did not start here")
    );
    // And the pending login is used up: the right state no longer works either.
    let response = app
        .get(&format!(
            "/login/callback?code=abc&state={}",
            query["state"]
        ))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = spawn_app().await;
    app.login_registered("yara").await;
    for path in [
        "/",
        "/VM_start",
        "/login",
        "/api/vm",
        "/healthz",
        "/nowhere",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
    let session = app.session_cookie().unwrap();
    assert!(session.starts_with("stackbinder_session="));
    let response = app.new_browser().get("/login").await;
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.starts_with("stackbinder_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let response = app.get("/healthz").await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}
