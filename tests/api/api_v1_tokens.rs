//! `/api/v1` with personal access tokens: made on the tokens page, shown
//! once, stored hashed; bearer only (no cookies); scopes; revocation.

use crate::helpers::{Browser, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

/// Run one query on the test app's own store, whichever backend it is.
macro_rules! on_db {
    ($app:expr, |$pool:ident| $body:expr) => {
        match $app.store().backend() {
            stackbinder::store::Backend::Sqlite($pool) => $body,
            stackbinder::store::Backend::Postgres($pool) => $body,
        }
    };
}

/// Make a token on the tokens page with the given scopes; the token shown.
pub(crate) async fn make_token(browser: &Browser, label: &str, scopes: &[&str]) -> String {
    let csrf = browser.csrf().await;
    let mut form = vec![("csrf", csrf.as_str()), ("label", label), ("days", "30")];
    form.extend(scopes.iter().map(|s| (*s, "on")));
    let response = browser.post_form("/tokens", &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let start = page.find("id=\"new-token\">").expect("the token is shown") + 15;
    let end = start + page[start..].find('<').unwrap();
    page[start..end].to_owned()
}

pub(crate) async fn api(
    browser: &Browser,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = browser.client.request(method, browser.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET /api/v1/vm` with `token`, refused as too many: its Retry-After
/// (seconds) and its body.
pub(crate) async fn too_many(browser: &Browser, token: &str) -> (u64, Value) {
    let response = browser
        .client
        .get(browser.url("/api/v1/vm"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    (retry, body)
}

#[tokio::test]
async fn a_token_is_shown_once_and_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let token = make_token(&browser, "script", &["vm_read"]).await;
    let (_, page) = browser.get_page("/tokens").await;
    assert!(page.contains("script") && !page.contains(&token), "{page}");
    let rows: Vec<(Vec<u8>, String)> = on_db!(app, |pool| sqlx::query_as(
        "SELECT secret_hash, scopes FROM api_tokens"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "vm:read");
    assert!(!String::from_utf8_lossy(&rows[0].0).contains(&token));
    let (status, body) = api(&browser, reqwest::Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_vm"))
    );
}

#[tokio::test]
async fn a_session_cookie_is_not_accepted_on_the_api() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let (status, body) = api(&browser, reqwest::Method::GET, "/api/v1/vm", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
}

#[tokio::test]
async fn a_revoked_token_gets_401() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let token = make_token(&browser, "script", &["vm_read"]).await;
    let (id,): (i64,) = on_db!(app, |pool| sqlx::query_as("SELECT id FROM api_tokens")
        .fetch_one(pool)
        .await
        .unwrap());
    let csrf = browser.csrf().await;
    let response = browser
        .post_form(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = api(&browser, reqwest::Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_scope_allows_only_its_routes() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let read = make_token(&browser, "read", &["vm_read"]).await;
    let (status, body) = api(&browser, reqwest::Method::DELETE, "/api/v1/vm", Some(&read)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    let launch = make_token(&browser, "launch", &["vm_launch"]).await;
    let (status, _) = api(&browser, reqwest::Method::GET, "/api/v1/vm", Some(&launch)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let token = make_token(&browser, "script", &["vm_read"]).await;
    on_db!(app, |pool| sqlx::query(
        "UPDATE api_tokens SET expires_at = $1"
    )
    .bind(chrono::Utc::now() - chrono::Duration::seconds(1))
    .execute(pool)
    .await
    .map(drop)
    .unwrap());
    let (status, _) = api(&browser, reqwest::Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_of_one_user_does_not_see_or_delete_anothers_vm() {
    let app = spawn_app().await;
    let alice = app.new_browser();
    alice.login_registered("alice").await;
    alice
        .launch("https://github.com/org/repo", "HEAD", "")
        .await;
    let bob = alice.new_browser();
    bob.login_registered("bob").await;
    let token = make_token(&bob, "script", &["vm_read", "vm_delete"]).await;
    let (status, _) = api(&bob, reqwest::Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api(&bob, reqwest::Method::DELETE, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(alice.api_vm().await.status().is_success());
}

#[tokio::test]
async fn unknown_api_tokens_were_not_rate_limited_per_address() {
    // Arrange: alice's real token, and a guesser on the same address.
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.login_registered("alice").await;
    let token = make_token(&browser, "script", &["vm_read"]).await;
    let guesser = app.new_browser();

    // Act: 31 wrong tokens are answered 401; the 31st locks the address.
    for i in 0..=30 {
        let guess = format!("guess-{i}");
        let (status, _) = api(&guesser, reqwest::Method::GET, "/api/v1/vm", Some(&guess)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}");
    }

    // Assert: the address is locked out, right token or not, with a
    // Retry-After a client can follow.
    let (retry, body) = too_many(&guesser, &token).await;
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(
        body["message"].as_str().unwrap().contains("wrong tokens"),
        "{body}"
    );
}
