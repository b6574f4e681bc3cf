//! `/api/v1` for admins (`admin:*` tokens of `registration.admins` only),
//! every route against every scope, and the rate limit per token.

use crate::api_v1_tokens::{api, make_token, too_many};
use crate::helpers::{Browser, REPO, TestApp, TestOptions, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackbinder::domain::{GithubId, Login};
use stackbinder::store::NewToken;
use std::num::NonZeroU32;

/// Every route under `/api/v1`: the OpenAPI test checks that the document
/// lists exactly these, so a route added without docs or without a row
/// here fails one of the two.
pub(crate) struct Route {
    pub method: &'static str,
    /// As the OpenAPI document writes it.
    pub template: &'static str,
    /// A request to it (ids that do not exist: no harm done).
    pub path: &'static str,
    pub body: Option<&'static str>,
    /// The scope it needs; None: no token at all.
    pub scope: Option<&'static str>,
}

const fn route(
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    scope: Option<&'static str>,
) -> Route {
    Route {
        method,
        template,
        path,
        body,
        scope,
    }
}

const READ: Option<&str> = Some("vm:read");
const LAUNCH: Option<&str> = Some("vm:launch");
const DELETE: Option<&str> = Some("vm:delete");
const ADMIN: Option<&str> = Some("admin:*");

pub(crate) const ROUTES: &[Route] = &[
    route(
        "GET",
        "/api/v1/openapi.json",
        "/api/v1/openapi.json",
        None,
        None,
    ),
    route("GET", "/api/v1/vm", "/api/v1/vm", None, READ),
    route("GET", "/api/v1/vm/events", "/api/v1/vm/events", None, READ),
    route(
        "POST",
        "/api/v1/vm",
        "/api/v1/vm",
        Some(r#"{"repo": "https://github.com/org/repo"}"#),
        LAUNCH,
    ),
    route("DELETE", "/api/v1/vm", "/api/v1/vm", None, DELETE),
    route("GET", "/api/v1/vms", "/api/v1/vms", None, ADMIN),
    route(
        "DELETE",
        "/api/v1/vms/{id}",
        "/api/v1/vms/nope",
        None,
        ADMIN,
    ),
    route("GET", "/api/v1/users", "/api/v1/users", None, ADMIN),
    route(
        "POST",
        "/api/v1/users/{github_id}/revoke",
        "/api/v1/users/424242/revoke",
        None,
        ADMIN,
    ),
    route("GET", "/api/v1/storage", "/api/v1/storage", None, ADMIN),
    route(
        "DELETE",
        "/api/v1/storage/{login}",
        "/api/v1/storage/nobody",
        None,
        ADMIN,
    ),
    route(
        "POST",
        "/api/v1/users/{github_id}/allow",
        "/api/v1/users/424242/allow",
        None,
        ADMIN,
    ),
    route("GET", "/api/v1/links", "/api/v1/links", None, ADMIN),
    route(
        "POST",
        "/api/v1/links",
        "/api/v1/links",
        Some(r#"{"label": "Course 101"}"#),
        ADMIN,
    ),
    route(
        "DELETE",
        "/api/v1/links/{id}",
        "/api/v1/links/424242",
        None,
        ADMIN,
    ),
];

/// The form fields of the tokens page, by scope.
fn field(scope: &str) -> &'static str {
    match scope {
        "vm:read" => "vm_read",
        "vm:launch" => "vm_launch",
        "vm:delete" => "vm_delete",
        "admin:*" => "admin",
        other => panic!("no such scope {other}"),
    }
}

async fn app_with_admin() -> TestApp {
    spawn_app_with(TestOptions {
        configure: |c| c.registration.admins = vec![Login::parse("boss").unwrap().into()],
        ..TestOptions::default()
    })
    .await
}

async fn boss(app: &TestApp) -> Browser {
    let boss = app.new_browser();
    boss.login("boss").await;
    boss
}

/// Send `route` with `token`: its status and error code (if any). The
/// body of an event stream is not read.
async fn call(
    browser: &Browser,
    route: &Route,
    token: Option<&str>,
) -> (StatusCode, Option<String>) {
    let method = Method::from_bytes(route.method.as_bytes()).unwrap();
    let mut request = browser.client.request(method, browser.url(route.path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = route.body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return (status, None);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().map(str::to_owned))
}

async fn user_id(app: &TestApp, login: &str) -> GithubId {
    app.store()
        .user_by_login(&Login::parse(login).unwrap())
        .await
        .unwrap()
        .expect("the user logged in")
        .github_id
}

/// A token stored directly, as if made earlier (expired, or by someone
/// who was an admin then).
async fn stored_token(
    app: &TestApp,
    login: &str,
    scopes: &str,
    expires_in: chrono::Duration,
) -> String {
    let token = format!("sbt_{}", stackbinder::secret::generate());
    app.store()
        .create_token(NewToken {
            github_id: user_id(app, login).await,
            label: "stored",
            secret_hash: &stackbinder::secret::hash(&token),
            scopes,
            expires_at: chrono::Utc::now() + expires_in,
        })
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn each_scope_allows_exactly_its_routes() {
    let app = app_with_admin().await;
    let boss = boss(&app).await;
    for scope in ["vm:read", "vm:launch", "vm:delete", "admin:*"] {
        let token = make_token(&boss, scope, &[field(scope)]).await;
        for route in ROUTES {
            let (status, code) = call(&boss, route, Some(&token)).await;
            let what = format!("{} {} with {scope}", route.method, route.path);
            if route.scope.is_none() || route.scope == Some(scope) {
                assert!(
                    status.is_success() || status.is_client_error(),
                    "{what}: {status}"
                );
                assert!(
                    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                    "{what}: {status} {code:?}"
                );
                // Served: not the router's 404 or 405.
                assert_ne!(code.as_deref(), Some("not_found"), "{what}");
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
            } else {
                assert_eq!(
                    (status, code.as_deref()),
                    (StatusCode::FORBIDDEN, Some("insufficient_scope")),
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn neither_a_session_cookie_nor_an_expired_revoked_or_unknown_token_gets_anywhere() {
    let app = app_with_admin().await;
    let boss = boss(&app).await;
    let all = "vm:read vm:launch vm:delete admin:*";
    let expired = stored_token(&app, "boss", all, chrono::Duration::seconds(-1)).await;
    let revoked = stored_token(&app, "boss", all, chrono::Duration::days(1)).await;
    let id = app
        .store()
        .tokens_of(user_id(&app, "boss").await)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.secret_hash == stackbinder::secret::hash(&revoked))
        .unwrap()
        .id;
    let csrf = boss.csrf().await;
    let response = boss
        .post_form(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for route in ROUTES.iter().filter(|r| r.scope.is_some()) {
        // boss's session cookie goes with every request (an admin's, CSRF
        // token or not): it is no token.
        for (what, token) in [
            ("the session cookie only", None),
            ("expired", Some(expired.as_str())),
            ("revoked", Some(revoked.as_str())),
            ("unknown", Some("sbt_not-a-token")),
        ] {
            assert_eq!(
                call(&boss, route, token).await,
                (StatusCode::UNAUTHORIZED, Some("unauthenticated".to_owned())),
                "{} {} with {what}",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test]
async fn only_an_admin_may_make_an_admin_token() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    let (_, page) = app.get_page("/tokens").await;
    assert!(!page.contains("name=\"admin\""), "offered to a non-admin");
    let csrf = app.csrf().await;
    let response = app
        .post_form(
            "/tokens",
            &[
                ("csrf", &csrf),
                ("label", "sneaky"),
                ("days", "30"),
                ("vm_read", "on"),
                ("admin", "on"),
            ],
        )
        .await;
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Only an admin may make an admin:* token."),
        "{page}"
    );
    assert!(!page.contains("id=\"new-token\""));
    let ada = user_id(&app, "ada").await;
    assert!(app.store().tokens_of(ada).await.unwrap().is_empty());

    let boss = boss(&app).await;
    let (_, page) = boss.get_page("/tokens").await;
    assert!(page.contains("name=\"admin\""), "offered to an admin");
    let token = make_token(&boss, "admin", &["admin"]).await;
    let (status, vms) = api(&boss, Method::GET, "/api/v1/vms", Some(&token)).await;
    assert_eq!((status, vms), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn admin_routes_refuse_tokens_of_non_admins() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    let mine = make_token(&app, "mine", &["vm_read", "vm_launch", "vm_delete"]).await;
    // As if she had made it while she was an admin.
    let admin = stored_token(&app, "ada", "admin:*", chrono::Duration::days(1)).await;
    for route in ROUTES.iter().filter(|r| r.scope == ADMIN) {
        let what = format!("{} {}", route.method, route.path);
        assert_eq!(
            call(&app, route, Some(&mine)).await,
            (StatusCode::FORBIDDEN, Some("insufficient_scope".to_owned())),
            "{what}"
        );
        assert_eq!(
            call(&app, route, Some(&admin)).await,
            (StatusCode::FORBIDDEN, Some("not_admin".to_owned())),
            "{what}"
        );
    }
    assert!(app.store().list_links().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_admin_token_lists_and_deletes_anyones_vm() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    let id = view["id"].as_str().unwrap();
    let boss = boss(&app).await;
    let token = make_token(&boss, "admin", &["admin"]).await;

    let (status, vms) = api(&boss, Method::GET, "/api/v1/vms", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vms.as_array().unwrap().len(), 1, "{vms:#}");
    assert_eq!(
        (&vms[0]["id"], &vms[0]["owner_login"], &vms[0]["state"]),
        (&json!(id), &json!("ada"), &json!("ready"))
    );
    let (_, none) = api(&boss, Method::GET, "/api/v1/vms?state=failed", Some(&token)).await;
    assert_eq!(none, json!([]));
    let (status, body) = api(&boss, Method::GET, "/api/v1/vms?state=sleepy", Some(&token)).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("bad_request"))
    );

    let (status, _) = api(
        &boss,
        Method::DELETE,
        &format!("/api/v1/vms/{id}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_for_view(&app.browser, "deleted", |v| v["state"] == "deleted")
        .await;
    assert_eq!(app.cloud.server_count(), 0);
    let (_, deleted) = api(
        &boss,
        Method::GET,
        "/api/v1/vms?state=deleted",
        Some(&token),
    )
    .await;
    assert_eq!(deleted[0]["id"], json!(id));
    let (_, live) = api(&boss, Method::GET, "/api/v1/vms", Some(&token)).await;
    assert_eq!(live, json!([]));
}

#[tokio::test]
async fn an_admin_token_lists_revokes_and_allows_users() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let boss = boss(&app).await;
    let token = make_token(&boss, "admin", &["admin"]).await;

    let (status, list) = api(&boss, Method::GET, "/api/v1/users", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let users = list["users"].as_array().unwrap();
    let ada = users
        .iter()
        .find(|u| u["login"] == "ada")
        .expect("ada is listed");
    let boss_row = users.iter().find(|u| u["login"] == "boss").unwrap();
    assert_eq!(
        (&ada["admin"], &boss_row["admin"]),
        (&json!(false), &json!(true))
    );
    assert!(ada["registered_at"].is_string() && ada["revoked_at"].is_null());
    let ada_id = ada["github_id"].as_i64().unwrap();

    let (status, revoked) = api(
        &boss,
        Method::POST,
        &format!("/api/v1/users/{ada_id}/revoke"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["login"], "ada");
    assert!(revoked["vm_deleted"].is_string());
    // She is out, and her VM goes.
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::FORBIDDEN);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.cloud.server_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "her server was deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (_, list) = api(&boss, Method::GET, "/api/v1/users", Some(&token)).await;
    let ada = &list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "ada")
        .unwrap()
        .clone();
    assert!(ada["revoked_at"].is_string(), "{ada}");

    let (status, allowed) = api(
        &boss,
        Method::POST,
        &format!("/api/v1/users/{ada_id}/allow"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(allowed["newly_registered"], json!(true));
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_token_makes_lists_and_revokes_links() {
    let app = app_with_admin().await;
    let boss = boss(&app).await;
    let token = make_token(&boss, "admin", &["admin"]).await;
    let post = |body: Value| {
        let request = boss
            .client
            .post(boss.url("/api/v1/links"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    for bad in [
        json!({"label": " "}),
        json!({"label": "x", "max_uses": 0}),
        json!({"label": "x", "expires_in_days": -1}),
        json!({"label": "x", "colour": "red"}),
    ] {
        let (status, body) = post(bad.clone()).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("bad_request")),
            "{bad}"
        );
    }
    let (status, created) =
        post(json!({"label": "Course 101", "max_uses": 1, "expires_in_days": 7})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (
            &created["link"]["label"],
            &created["link"]["state"],
            &created["link"]["max_uses"]
        ),
        (&json!("Course 101"), &json!("active"), &json!(1))
    );
    let url = created["url"].as_str().unwrap();
    let id = created["link"]["id"].as_i64().unwrap();

    // The link registers someone, once.
    let ada = app.new_browser();
    ada.login("ada").await;
    let path = url.strip_prefix(&app.base).expect("a link to this server");
    let (status, page) = ada.get_page(path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = crate::helpers::csrf_from(&page);
    let (_, page) = {
        let response = ada.post_form(path, &[("csrf", &csrf)]).await;
        (response.status(), response.text().await.unwrap())
    };
    assert!(page.contains("You are registered"), "{page}");

    let (_, links) = api(&boss, Method::GET, "/api/v1/links", Some(&token)).await;
    assert_eq!(
        (&links[0]["id"], &links[0]["uses"], &links[0]["state"]),
        (&json!(id), &json!(1), &json!("usedup"))
    );
    assert!(
        !links.to_string().contains(url.rsplit('/').next().unwrap()),
        "no secret listed"
    );
    let (status, _) = api(
        &boss,
        Method::DELETE,
        &format!("/api/v1/links/{id}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, links) = api(&boss, Method::GET, "/api/v1/links", Some(&token)).await;
    assert_eq!(links[0]["state"], "revoked");
    let (status, body) = api(&boss, Method::DELETE, "/api/v1/links/999", Some(&token)).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("no_such_link"))
    );
}

#[tokio::test]
async fn a_token_past_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(TestOptions {
        configure: |c| c.api.requests_per_minute = NonZeroU32::new(2).unwrap(),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    let first = make_token(&app, "first", &["vm_read"]).await;
    let second = make_token(&app, "second", &["vm_read"]).await;
    for _ in 0..2 {
        let (status, _) = api(&app, Method::GET, "/api/v1/vm", Some(&first)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (retry, _) = too_many(&app, &first).await;
    // One request comes back every 30 s.
    assert!((1..=30).contains(&retry), "{retry}");
    // Per token: another one of the same user is not held up.
    let (status, _) = api(&app, Method::GET, "/api/v1/vm", Some(&second)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_users_token_launches_sees_and_deletes_only_their_own_vm() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let ada_vm = app.wait_for_state("ready").await["id"].clone();
    let bob = app.new_browser();
    bob.login_registered("bob").await;
    let token = make_token(&bob, "all", &["vm_read", "vm_launch", "vm_delete"]).await;
    let (status, _) = api(&bob, Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ada's VM is not bob's");

    let response = bob
        .client
        .post(bob.url("/api/v1/vm"))
        .bearer_auth(&token)
        .json(&json!({"repo": REPO}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let bob_vm = response.json::<Value>().await.unwrap()["id"].clone();
    assert_ne!(bob_vm, ada_vm);
    let (_, seen) = api(&bob, Method::GET, "/api/v1/vm", Some(&token)).await;
    assert_eq!(seen["id"], bob_vm);
    let (status, _) = api(&bob, Method::DELETE, "/api/v1/vm", Some(&token)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_for_view(&bob, "bob's VM deleted", |v| v["state"] == "deleted")
        .await;
    let ada = app.api_vm_json().await;
    assert_eq!((&ada["id"], &ada["state"]), (&ada_vm, &json!("ready")));
    // And the cloud still has ada's server, and only it.
    assert_eq!(app.cloud.server_count(), 1);
}
