//! Logging in with GitHub (the fake one): the round trip with state and
//! PKCE, the identity by numeric id, sessions and their cookie, and a
//! friendly page with "Try again" for each way GitHub can fail.

use crate::fake_github::*;
use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::domain::{GithubId, Login as GithubLogin};
use std::num::NonZero;
use std::time::{Duration, Instant};
use tower_sessions::cookie::time::OffsetDateTime;
use url::Url;

const LAUNCH_LINK: &str = "/VM_start?giturl=https%3A%2F%2Fgithub.com%2Fbinder-examples%2Fconda&ref=main&urlpath=lab%2Ftree%2Findex.ipynb";

/// A login has failed with the friendly page that offers to try again.
async fn assert_friendly_failure(response: reqwest::Response, says: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = unescape(&response.text().await.unwrap());
    assert!(page.contains("Login did not work"), "{page}");
    assert!(page.contains(says), "expected {says:?} in {page}");
    assert!(
        page.contains("<a class=\"button primary\" href=\"/login\">Try again</a>"),
        "{page}"
    );
    for internal in ["gho_", "reqwest", "error sending request", "127.0.0.1"] {
        assert!(
            !page.contains(internal),
            "the page shows {internal:?}: {page}"
        );
    }
}

/// Nobody is logged in, and no GitHub user reached the store.
async fn assert_nobody_logged_in(app: &TestApp) {
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    assert!(app.store().list_users().await.unwrap().is_empty());
}

/// The value of the session cookie a browser holds (without the name).
fn session_id(browser: &Browser) -> String {
    let cookie = browser.session_cookie().expect("a session cookie");
    cookie.split_once('=').unwrap().1.to_owned()
}

fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{}=", stackbinder::web::SESSION_COOKIE)))
        .unwrap_or_else(|| panic!("no session cookie set by {}", response.url()))
        .to_owned()
}

#[tokio::test]
async fn logging_in_with_github_remembers_the_numeric_id_in_a_new_session() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let id = fake.add_user("Octo-Cat");

    // An anonymous visitor has no session...
    let (status, home) = app.get_page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Log in with GitHub"), "{home}");
    assert!(app.session_cookie().is_none(), "nothing stored, no session");

    // ...until /login stores the pending login and goes to GitHub with
    // state and a PKCE challenge, no scope.
    let response = app.get("/login").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let before = app.session_cookie().expect("the pending login's session");
    let authorize = location(&response);
    let to = Url::parse(&authorize).unwrap();
    assert_eq!(to.origin(), fake.authorize_url().origin());
    assert_eq!(to.path(), "/login/oauth/authorize");
    let query: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(
        query["redirect_uri"],
        format!("{}/login/callback", app.base)
    );
    assert_eq!(query["response_type"], "code");
    assert!(query["state"].len() >= 16, "{query:?}");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43, "SHA-256, base64url");
    assert!(
        query.get("scope").is_none_or(|s| s.is_empty()),
        "identity only: no scope without allowed_orgs: {query:?}"
    );
    assert!(!authorize.contains(CLIENT_SECRET));

    // GitHub sends the browser back with a code; the app trades it.
    let callback = fake.approve(&authorize, "Octo-Cat").await;
    assert_eq!(callback.path(), "/login/callback");
    let response = app.get_url(callback.as_str()).await;
    assert_is_redirect_to(&response, "/");
    let cookie = set_cookie(&response);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "not Secure over http: {cookie}");

    // Logged in as that GitHub user, known by number, in a new session.
    let after = app.session_cookie().unwrap();
    assert_ne!(before, after, "the session id changes at login");
    let user = app
        .store()
        .user(GithubId(id))
        .await
        .unwrap()
        .expect("the user is stored under GitHub's numeric id");
    assert_eq!(user.login, "Octo-Cat");
    assert!(!user.is_registered());
    assert_eq!(app.store().list_users().await.unwrap().len(), 1);
    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::FORBIDDEN,
        "logged in, not registered"
    );
    let (_, home) = app.get_page("/").await;
    assert!(
        home.contains("Octo-Cat") && home.contains("Log out"),
        "{home}"
    );
    let old_session = plain_client()
        .get(app.url("/api/vm"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_session.status(),
        StatusCode::UNAUTHORIZED,
        "the session id from before the login does not carry it"
    );

    // What GitHub saw: one code exchange asking for JSON, with the
    // verifier of the challenge, the client's credentials out of the URL,
    // and one /user with a User-Agent and the token.
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    let exchange = &tokens[0];
    assert_eq!(exchange.method, "POST");
    assert_eq!(exchange.query, None, "nothing in the token URL");
    assert!(
        exchange
            .header("accept")
            .is_some_and(|a| a.contains("application/json")),
        "{:?}",
        exchange.headers
    );
    assert!(
        exchange
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    );
    let form = exchange.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], format!("{}/login/callback", app.base));
    assert_eq!(
        Some(form["code"].as_str()),
        callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v)
            .as_deref()
    );
    assert!(form["code_verifier"].len() >= 43);
    let basic = exchange
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "));
    assert!(
        basic || form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET),
        "the client authenticates: {exchange:?}"
    );
    assert_eq!(exchange.status, 200);
    let answer: serde_json::Value = serde_json::from_str(&exchange.answer).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();

    let users = fake.user_requests();
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0].path, "/api/v3/user",
        "under the configured api_url"
    );
    assert!(
        users[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("stackbinder/"))
    );
    assert_eq!(
        users[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(
        fake.requests().iter().all(|r| {
            !r.query.as_deref().unwrap_or("").contains(CLIENT_SECRET)
                && !r.path.contains(CLIENT_SECRET)
        }),
        "the client secret never travels in a URL"
    );
    assert!(
        !after.contains(&token) && !before.contains(&token),
        "the token stays on the server"
    );
}

#[tokio::test]
async fn a_renamed_github_account_keeps_its_user_and_vm() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let id = github_login(&app, &fake, "old-name").await;
    register(&app).await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let vm = app.api_vm_json().await["id"].as_str().unwrap().to_owned();
    let csrf = app.csrf().await;
    assert_is_redirect_to(&app.post_form("/logout", &[("csrf", &csrf)]).await, "/");

    fake.rename_user(id, "new-name");
    github_login(&app, &fake, "new-name").await;

    let users = app.store().list_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].github_id, GithubId(id));
    assert_eq!(users[0].login, "new-name");
    assert!(users[0].is_registered(), "the registration stays");
    assert_eq!(
        app.api_vm_json().await["id"],
        vm.as_str(),
        "the same VM, found by the numeric id"
    );
}

#[tokio::test]
async fn a_login_freed_by_a_rename_does_not_bring_its_registration_along() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let first = github_login(&app, &fake, "popular").await;
    register(&app).await;

    // The first owner renames; someone else takes the name and logs in.
    fake.rename_user(first, "popular-old");
    let newcomer = app.new_browser();
    let second = github_login(&newcomer, &fake, "popular").await;
    assert_ne!(first, second);

    assert_eq!(
        newcomer.api_vm().await.status(),
        StatusCode::FORBIDDEN,
        "the new owner of the name is not registered"
    );
    let (status, page) = newcomer.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("You are not registered yet"), "{page}");
    assert!(
        app.store()
            .user(GithubId(first))
            .await
            .unwrap()
            .unwrap()
            .is_registered(),
        "the first account stays registered"
    );
    assert!(
        !app.store()
            .user(GithubId(second))
            .await
            .unwrap()
            .unwrap()
            .is_registered()
    );
}

#[tokio::test]
async fn a_shared_launch_link_survives_the_login_round_trip() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    app.store()
        .allow_login(&GithubLogin::parse("sharer").unwrap(), "test")
        .await
        .unwrap();

    // Logged out: the launch link leads to the login, remembering itself.
    let response = app.get(LAUNCH_LINK).await;
    let to_login = location(&response);
    assert!(to_login.starts_with("/login?next="), "{to_login}");
    let next: String = Url::parse(&format!("http://x{to_login}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(next, LAUNCH_LINK);

    let response = github_login_from(&app, &fake, LAUNCH_LINK, "sharer").await;
    assert_is_redirect_to(&response, LAUNCH_LINK);

    let (status, page) = app.get_page(LAUNCH_LINK).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = unescape(&page);
    assert!(
        page.contains("https://github.com/binder-examples/conda"),
        "{page}"
    );
    assert!(page.contains("<code>main</code>"), "{page}");
    assert!(page.contains("/lab/tree/index.ipynb"), "{page}");
}

#[tokio::test]
async fn next_pointing_at_another_host_ends_on_the_home_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    for next in [
        "//evil.example",
        "//evil.example/VM_start",
        "https://evil.example/",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "evil.example",
        "/\r\nLocation: https://evil.example",
    ] {
        let browser = app.new_browser();
        let path = format!(
            "/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish()
        );
        let response = github_login_from(&browser, &fake, &path, "wanderer").await;
        assert_is_redirect_to(&response, "/");
        assert!(is_logged_in(&browser).await, "{next:?}");

        // Logged in already: /login?next=... sends on at once, also home.
        let response = browser.get(&path).await;
        assert_is_redirect_to(&response, "/");
    }

    // A `next` added to the callback is not obeyed either.
    let browser = app.new_browser();
    let authorize = authorize_url_from(&browser, &fake, "/login?next=%2FVM_status").await;
    let mut callback = fake.approve(&authorize, "wanderer").await;
    callback
        .query_pairs_mut()
        .append_pair("next", "https://evil.example/");
    let response = browser.get_url(callback.as_str()).await;
    assert_is_redirect_to(&response, "/VM_status");
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    github_login(&app, &fake, "leaver").await;
    let cookie = app.session_cookie().unwrap();
    let id = session_id(&app);
    let stored = session_row(app.store(), &id).await;
    assert!(stored.is_some(), "the session is in the database");

    let csrf = app.csrf().await;
    let response = app.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_is_redirect_to(&response, "/");
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    let stored = session_row(app.store(), &id).await;
    assert!(stored.is_none(), "the session is gone from the database");
    let copied = plain_client()
        .get(app.url("/api/vm"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.status(),
        StatusCode::UNAUTHORIZED,
        "a copy is dead too"
    );
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("Log in with GitHub"), "{home}");
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let fake = FakeGithub::start().await;
    let mut app = spawn_with_github(&fake, |_| {}).await;
    github_login(&app, &fake, "steady").await;
    register(&app).await;
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);

    app.restart().await;

    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::NOT_FOUND,
        "still logged in and registered after a restart"
    );
}

// ---------------------------------------------------------------------
// The ways a GitHub login fails.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_state_is_refused_without_asking_github() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let callback = fake.approve(&authorize, "tamper").await;
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    let state = &pairs.iter().find(|(k, _)| k == "state").unwrap().1;
    let code = &pairs.iter().find(|(k, _)| k == "code").unwrap().1;
    let mut forged = state.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });

    let mut tampered = callback.clone();
    tampered
        .query_pairs_mut()
        .clear()
        .append_pair("code", code)
        .append_pair("state", &forged);
    let response = app.get_url(tampered.as_str()).await;
    assert_friendly_failure(response, "did not start here").await;
    assert_nobody_logged_in(&app).await;
    assert!(
        fake.token_requests().is_empty(),
        "the code was not traded with a wrong state"
    );

    // The pending login is used up: the genuine callback fails too now.
    let response = app.get_url(callback.as_str()).await;
    assert_friendly_failure(response, "expired or was already used").await;
    assert_nobody_logged_in(&app).await;
    assert!(fake.token_requests().is_empty());

    // And "Try again" works.
    github_login(&app, &fake, "tamper").await;
    assert!(is_logged_in(&app).await);
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let callback = fake.approve(&authorize, "stateless").await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let response = app.get(&format!("/login/callback?code={code}")).await;
    assert_friendly_failure(response, "Please start again").await;
    assert_nobody_logged_in(&app).await;
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let callback = fake.approve(&authorize, "victim").await;
    assert_is_redirect_to(&app.get_url(callback.as_str()).await, "/");
    assert_eq!(fake.token_requests().len(), 1);

    // The same browser again.
    let response = app.get_url(callback.as_str()).await;
    assert_friendly_failure(response, "expired or was already used").await;

    // Someone who copied the callback URL, with or without a login of
    // their own under way.
    let thief = app.new_browser();
    let response = thief.get_url(callback.as_str()).await;
    assert_friendly_failure(response, "expired or was already used").await;
    assert_eq!(thief.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    let _ = authorize_url_from(&thief, &fake, "/login").await;
    let response = thief.get_url(callback.as_str()).await;
    assert_friendly_failure(response, "did not start here").await;
    assert_eq!(thief.api_vm().await.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        fake.token_requests().len(),
        1,
        "a replayed code is never traded again"
    );
    assert_eq!(app.store().list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn denying_access_on_github_shows_a_friendly_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let callback = fake.deny(&authorize, "shy").await;
    assert!(
        callback
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied")
    );

    let response = app.get_url(callback.as_str()).await;
    assert_friendly_failure(response, "You did not allow the login on GitHub").await;
    assert_nobody_logged_in(&app).await;
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn another_error_from_github_is_shown_escaped() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let state = Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let response = app
        .client
        .get(app.url("/login/callback"))
        .query(&[
            ("error", "<script>alert(1)</script>"),
            ("state", state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let raw = response.text().await.unwrap();
    assert!(!raw.contains("<script>alert"), "{raw}");
    assert!(raw.contains("Try again"), "{raw}");
    assert_nobody_logged_in(&app).await;
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn the_login_callback_never_echoes_the_error_text_of_the_link() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    for (error, expected) in [
        (
            "Your account is locked. Call +1 555 0100 with your password",
            "GitHub did not complete the login. Please start again.",
        ),
        ("access_denied", "You did not allow the login on GitHub"),
        (
            "redirect_uri_mismatch",
            "callback URL is not the one registered",
        ),
        ("application_suspended", "OAuth app is suspended"),
        (
            "temporarily_unavailable",
            "GitHub is busy and could not log you in",
        ),
    ] {
        let _ = authorize_url_from(&app, &fake, "/login").await;
        let response = app
            .client
            .get(app.url("/login/callback"))
            .query(&[
                ("error", error),
                ("error_description", "Visit evil.example to log in"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{error}");
        let page = unescape(&response.text().await.unwrap());
        assert!(page.contains(expected), "{error}: {page}");
        if error.contains(' ') {
            assert!(
                !page.contains("Call +1"),
                "the link's text is shown: {page}"
            );
        }
        assert!(!page.contains("evil.example"), "{page}");
    }
    assert_nobody_logged_in(&app).await;
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn a_code_github_rejects_shows_a_friendly_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    fake.set_code_lifetime(Duration::ZERO);

    let response = github_login_from(&app, &fake, "/login", "slowpoke").await;
    assert_friendly_failure(response, "did not accept the login code").await;
    assert_nobody_logged_in(&app).await;

    // GitHub's way: HTTP 200 with an error in the JSON the app asked for.
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].status, 200);
    let answer: serde_json::Value = serde_json::from_str(&tokens[0].answer).unwrap();
    assert_eq!(answer["error"], "bad_verification_code");
    assert!(fake.user_requests().is_empty(), "no token, no /user");

    fake.set_code_lifetime(Duration::from_secs(600));
    github_login(&app, &fake, "slowpoke").await;
}

#[tokio::test]
async fn a_token_github_rejects_shows_a_friendly_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    fake.set_faults(Faults {
        revoke_tokens: true,
        ..Faults::default()
    });

    let response = github_login_from(&app, &fake, "/login", "revoked").await;
    assert_friendly_failure(response, "did not accept our access token").await;
    assert_nobody_logged_in(&app).await;
    let users = fake.user_requests();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].status, 401);
    assert!(users[0].answer.contains("Bad credentials"));
}

#[tokio::test]
async fn github_server_errors_show_a_friendly_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    for status in [500, 502, 503] {
        fake.set_faults(Faults {
            user_status: Some(status),
            ..Faults::default()
        });
        let response = github_login_from(&app, &fake, "/login", "unlucky").await;
        assert_friendly_failure(response, "GitHub is not answering properly").await;
        assert_nobody_logged_in(&app).await;
        assert_eq!(fake.user_requests().last().unwrap().status, status);
    }

    fake.set_faults(Faults::default());
    github_login(&app, &fake, "unlucky").await;
}

#[tokio::test]
async fn github_timeouts_show_a_friendly_page_in_time() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.github.timeout_seconds = NonZero::new(1).unwrap()
    })
    .await;
    for faults in [
        Faults {
            token_delay: Some(Duration::from_secs(8)),
            ..Faults::default()
        },
        Faults {
            user_delay: Some(Duration::from_secs(8)),
            ..Faults::default()
        },
    ] {
        fake.set_faults(faults.clone());
        let authorize = authorize_url_from(&app, &fake, "/login").await;
        let callback = fake.approve(&authorize, "patient").await;
        let started = Instant::now();
        let response = app.get_url(callback.as_str()).await;
        let took = started.elapsed();
        assert_friendly_failure(response, "GitHub is not answering properly").await;
        assert!(
            took < Duration::from_secs(5),
            "github.timeout_seconds = 1 bounds the wait, not {took:?} ({faults:?})"
        );
        assert_nobody_logged_in(&app).await;
    }
}

// ---------------------------------------------------------------------
// The session cookie and expiry.
// ---------------------------------------------------------------------

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    use stackbinder::app::{Application, Options};
    use stackbinder::cloud::Cloud;
    use stackbinder::cloud::simulated::{SimulatedCloud, Timings};
    use std::sync::Arc;

    let fake = FakeGithub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = stackbinder::config::Config::defaults();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.public_url = Url::parse("https://binder.example.org/").unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("s.db").display());
    config.github.client_id = CLIENT_ID.into();
    config.github.client_secret = Some(CLIENT_SECRET.to_owned().into());
    config.github.authorize_url = fake.authorize_url();
    config.github.token_url = fake.token_url();
    config.github.api_url = fake.api_url();
    let app = Application::build(
        config,
        Options {
            demo_login: false,
            cloud: Some(Arc::new(SimulatedCloud::new(Timings::quick(), 1)) as Arc<dyn Cloud>),
            drive_in_background: false,
            public_url_from_bind: false,
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    // Behind a TLS proxy: the app itself is reached over http.
    let client = plain_client();
    let response = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = set_cookie(&response);
    for flag in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    let authorize = location(&response);
    let redirect_uri = Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(redirect_uri, "https://binder.example.org/login/callback");

    // The login's new session cookie is Secure too.
    let callback = fake.approve(&authorize, "tls-user").await;
    assert_eq!(callback.host_str(), Some("binder.example.org"));
    let session = cookie.split(';').next().unwrap().to_owned();
    let response = client
        .get(format!(
            "{base}/login/callback?{}",
            callback.query().unwrap()
        ))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_is_redirect_to(&response, "/");
    let cookie = set_cookie(&response);
    assert!(cookie.contains("Secure"), "{cookie}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// The `expiry_date` of a session row.
async fn session_expiry(app: &TestApp, id: &str) -> OffsetDateTime {
    let (_, expiry) = session_row(app.store(), id).await.expect("the session row");
    expiry
}

#[tokio::test]
async fn an_idle_session_expires() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.server.session_idle_minutes = NonZero::new(5).unwrap()
    })
    .await;
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let callback = fake.approve(&authorize, "idler").await;
    let response = app.get_url(callback.as_str()).await;
    let cookie = set_cookie(&response);
    assert!(cookie.contains("Max-Age=300"), "5 idle minutes: {cookie}");
    assert!(is_logged_in(&app).await);

    // Five minutes later (moved in the database, not waited for).
    let id = session_id(&app);
    let (data, _) = session_row(app.store(), &id)
        .await
        .expect("the session row");
    set_session_row(app.store(), &id, &data, time_in_the_past()).await;
    assert!(!is_logged_in(&app).await, "an idle session is over");
    let response = app.get("/VM_status").await;
    assert!(location(&response).starts_with("/login?next="));
}

fn time_in_the_past() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(946_684_800).unwrap() // 2000-01-01
}

#[tokio::test]
async fn an_active_session_is_kept_alive() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.server.session_idle_minutes = NonZero::new(5).unwrap()
    })
    .await;
    github_login(&app, &fake, "busy").await;
    register(&app).await;
    let id = session_id(&app);
    let at_login = session_expiry(&app, &id).await;

    // The user keeps working. A session is written at most once a minute
    // to push its expiry back: make that minute pass in the database.
    crate::session_writes::age_session(&app, &id, Duration::from_secs(61)).await;
    let response = app.get("/VM_start").await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=300"));

    let after_activity = session_expiry(&app, &id).await;
    assert!(
        after_activity > at_login,
        "activity moves the idle expiry on (was {at_login}, still {after_activity}): \
         otherwise an active user is logged out session_idle_minutes after login"
    );
    assert!(
        refreshed_cookie,
        "the browser's cookie (Max-Age) is refreshed by activity too"
    );
}

#[tokio::test]
async fn a_session_ends_session_max_hours_after_login_however_busy() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.server.session_max_hours = NonZero::new(1).unwrap()
    })
    .await;
    github_login(&app, &fake, "marathon").await;
    register(&app).await;
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);

    // The login happened two hours ago.
    let id = session_id(&app);
    let (data, expiry) = session_row(app.store(), &id)
        .await
        .expect("the session row");
    let data = move_login_time(&data, chrono::Duration::hours(2));
    set_session_row(app.store(), &id, &data, expiry).await;

    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::UNAUTHORIZED,
        "the session is over"
    );
    let response = app.get("/VM_start").await;
    assert!(location(&response).starts_with("/login?next="));
}

/// Move the `login_at` time in a MessagePack session record `by` into the
/// past, keeping the string's length.
fn move_login_time(data: &[u8], by: chrono::Duration) -> Vec<u8> {
    let key = b"\xa8login_at";
    let at = data
        .windows(key.len())
        .position(|w| w == key)
        .expect("the session holds a login time")
        + key.len();
    let (start, len) = match data[at] {
        b @ 0xa0..=0xbf => (at + 1, usize::from(b & 0x1f)),
        0xd9 => (at + 2, usize::from(data[at + 1])),
        other => panic!("login_at is not a short string (0x{other:x})"),
    };
    let text = std::str::from_utf8(&data[start..start + len]).unwrap();
    let when = chrono::DateTime::parse_from_rfc3339(text).unwrap() - by;
    let moved = when
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(moved.len(), len, "{text} → {moved}");
    let mut out = data.to_vec();
    out[start..start + len].copy_from_slice(moved.as_bytes());
    out
}
