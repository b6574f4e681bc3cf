//! Who may launch with GitHub login: registered users, admins, members of
//! allowed organizations or teams; never blocked users. Access is checked
//! on every request, so a removal counts at once. Also CSRF, the security
//! headers and the absence of the demo login in GitHub mode.

use crate::fake_github::*;
use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use stackbinder::config::OrgOrTeam;
use stackbinder::domain::{GithubId, Login};
use std::num::NonZero;
use std::time::Duration;
use url::Url;

fn login(name: &str) -> Login {
    Login::parse(name).unwrap()
}

fn org(entry: &str) -> OrgOrTeam {
    serde_json::from_value(serde_json::json!(entry)).expect("an org or org/team")
}

/// GET /VM_start answers the not-registered page.
async fn assert_not_registered(browser: &Browser) {
    let (status, page) = browser.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("You are not registered yet"), "{page}");
    assert!(page.contains("registration link"), "{page}");
}

/// Open the confirmation page and press Launch; the answer to the POST.
async fn press_launch(browser: &Browser) -> reqwest::Response {
    let page = browser.confirm_page(REPO, "main", "").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_from(&page.text().await.unwrap());
    browser
        .post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await
}

#[tokio::test]
async fn admins_may_launch_without_registering() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.admins = vec![login("Head-Teacher").into()];
    })
    .await;
    // GitHub logins are case-insensitive.
    let id = github_login(&app, &fake, "head-teacher").await;

    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    assert_is_redirect_to(&press_launch(&app).await, "/VM_status");
    assert_eq!(app.api_vm_json().await["repo"], REPO);
    let user = app.store().user(GithubId(id)).await.unwrap().unwrap();
    assert!(!user.is_registered(), "admins need no registration");

    let pupil = app.new_browser();
    github_login(&pupil, &fake, "pupil").await;
    assert_not_registered(&pupil).await;
}

#[tokio::test]
async fn blocked_users_are_refused_at_login() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.blocked_users = vec![login("Mallory").into()];
        config.registration.admins = vec![login("mallory").into()];
    })
    .await;
    app.store()
        .allow_login(&login("mallory"), "test")
        .await
        .unwrap();

    let response = github_login_from(&app, &fake, "/login", "mallory").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = response.text().await.unwrap();
    assert!(page.contains("Not allowed"), "{page}");
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
    assert!(
        app.store()
            .user_by_login(&login("mallory"))
            .await
            .unwrap()
            .is_none(),
        "a blocked user is not even recorded"
    );
}

#[tokio::test]
async fn blocked_users_are_refused_everywhere_even_when_registered() {
    let fake = FakeGithub::start().await;
    let mut app = spawn_with_github(&fake, |_| {}).await;
    github_login(&app, &fake, "trudy").await;
    register(&app).await;
    assert_is_redirect_to(&press_launch(&app).await, "/VM_status");
    app.wait_for_state("ready").await;
    let csrf = app.csrf().await;

    // The operator blocks her; her session and registration stay.
    app.config.registration.blocked_users = vec![login("trudy").into()];
    app.restart().await;

    for path in ["/VM_start", "/VM_status", "/VM_delete", "/api/vm"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "GET {path}");
    }
    let (status, page) = app.get_page(&app.registration_path()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Not allowed"), "{page}");
    let form = [("csrf", csrf.as_str()), ("giturl", REPO)];
    for path in ["/VM_start", "/VM_delete", &app.registration_path()] {
        let response = app.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_eq!(app.cloud.calls(Op::DeleteServer), 0);

    // Logging in again does not help.
    let response = github_login_from(&app.new_browser(), &fake, "/login", "trudy").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn removing_a_user_takes_effect_on_their_next_request() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    github_login(&app, &fake, "dropped").await;
    register(&app).await;
    let confirm = app.confirm_page(REPO, "main", "").await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let csrf = csrf_from(&confirm.text().await.unwrap());

    app.store()
        .revoke_login(&login("dropped"), "test")
        .await
        .unwrap();

    let (status, page) = app.get_page("/VM_start").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Your access was withdrawn"), "{page}");
    let response = app
        .post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.api_vm().await.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
}

// ---------------------------------------------------------------------
// registration.allowed_orgs
// ---------------------------------------------------------------------

#[tokio::test]
async fn members_of_an_allowed_organization_get_in_without_a_link() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab")];
    })
    .await;
    fake.set_org_membership("physics-lab", "ada", "active");

    // Only now does the login ask GitHub for read:org.
    let authorize = authorize_url_from(&app, &fake, "/login").await;
    let scope = Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(scope.as_deref(), Some("read:org"));
    let callback = fake.approve(&authorize, "ada").await;
    assert_is_redirect_to(&app.get_url(callback.as_str()).await, "/");

    let checks = fake.requests_to("/user/memberships/orgs/physics-lab");
    assert_eq!(checks.len(), 1, "checked at login");
    assert_eq!(checks[0].path, "/api/v3/user/memberships/orgs/physics-lab");
    assert_eq!(checks[0].status, 200);
    assert!(checks[0].header("user-agent").is_some());

    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    assert_is_redirect_to(&press_launch(&app).await, "/VM_status");
    assert_eq!(app.api_vm_json().await["repo"], REPO);
    assert_eq!(
        fake.requests_to("/user/memberships/orgs/physics-lab").len(),
        2,
        "and again before the launch"
    );
    let ada = app
        .store()
        .user_by_login(&login("ada"))
        .await
        .unwrap()
        .unwrap();
    assert!(!ada.is_registered(), "membership is not a registration");
}

#[tokio::test]
async fn outsiders_and_pending_members_get_the_not_registered_page() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab")];
    })
    .await;
    fake.set_org_membership("physics-lab", "invited", "pending");
    fake.set_org_membership("chemistry-lab", "outsider", "active");

    for name in ["outsider", "invited"] {
        let browser = app.new_browser();
        github_login(&browser, &fake, name).await;
        assert_not_registered(&browser).await;
        assert_eq!(browser.api_vm().await.status(), StatusCode::FORBIDDEN);
    }
    // Both were asked about, and said no.
    let checks = fake.requests_to("/user/memberships/orgs/physics-lab");
    assert_eq!(checks.len(), 2);
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
}

#[tokio::test]
async fn members_of_an_allowed_team_get_in_and_the_rest_of_the_org_does_not() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab/tutors")];
    })
    .await;
    fake.add_team_member("physics-lab", "tutors", "ben");
    fake.set_org_membership("physics-lab", "carl", "active");

    github_login(&app, &fake, "ben").await;
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    let checks = fake.requests_to("/memberships/ben");
    assert_eq!(checks.len(), 1);
    assert_eq!(
        checks[0].path,
        "/api/v3/orgs/physics-lab/teams/tutors/memberships/ben"
    );
    assert_eq!(checks[0].status, 200);

    let carl = app.new_browser();
    github_login(&carl, &fake, "carl").await;
    assert_not_registered(&carl).await;
}

#[tokio::test]
async fn leaving_the_organization_ends_access_at_the_next_launch() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab")];
    })
    .await;
    fake.set_org_membership("physics-lab", "leaver", "active");
    github_login(&app, &fake, "leaver").await;
    let confirm = app.confirm_page(REPO, "main", "").await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let csrf = csrf_from(&confirm.text().await.unwrap());

    fake.remove_org_member("physics-lab", "leaver");

    let response = app
        .post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = response.text().await.unwrap();
    assert!(page.contains("You are not registered yet"), "{page}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert_eq!(app.api_vm().await.status(), StatusCode::FORBIDDEN);
    assert_not_registered(&app).await;
}

#[tokio::test]
async fn a_membership_check_that_fails_at_launch_launches_nothing() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab")];
    })
    .await;
    fake.set_org_membership("physics-lab", "hopeful", "active");
    github_login(&app, &fake, "hopeful").await;
    let confirm = app.confirm_page(REPO, "main", "").await;
    let csrf = csrf_from(&confirm.text().await.unwrap());

    fake.set_faults(Faults {
        membership_status: Some(502),
        ..Faults::default()
    });
    let response = app
        .post_form(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("ref", "main")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Cannot check your organization membership"),
        "{page}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);

    // When GitHub is back, the launch works.
    fake.set_faults(Faults::default());
    assert_is_redirect_to(&press_launch(&app).await, "/VM_status");
}

#[tokio::test]
async fn a_membership_check_that_fails_at_login_logs_nobody_in() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs = vec![org("physics-lab")];
    })
    .await;
    fake.set_org_membership("physics-lab", "early", "active");
    fake.set_faults(Faults {
        membership_status: Some(503),
        ..Faults::default()
    });

    let response = github_login_from(&app, &fake, "/login", "early").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("Login did not work"), "{page}");
    assert!(page.contains("Try again"), "{page}");
    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::UNAUTHORIZED,
        "a page that says the login did not work leaves nobody logged in"
    );
}

// ---------------------------------------------------------------------
// CSRF, security headers, no demo login.
// ---------------------------------------------------------------------

#[tokio::test]
async fn posts_without_their_csrf_token_are_refused() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let secret_path = app.registration_path();

    // A visitor who never opened a page (a cross-site form).
    let stranger = app.new_browser();
    for path in ["/logout", secret_path.as_str()] {
        let response = stranger.post_form(path, &[]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("This form has expired"), "{page}");
    }
    let response = stranger
        .post_form("/VM_start", &[("giturl", REPO), ("ref", "main")])
        .await;
    assert!(
        response.status() == StatusCode::FORBIDDEN
            || location(&response).starts_with("/login?next="),
        "a logged-out launch is refused or sent to the login: {}",
        response.status()
    );

    // A logged-in user, with no token, an empty one, or another session's.
    let other = app.new_browser();
    github_login(&other, &fake, "other").await;
    let foreign = other.csrf().await;
    github_login(&app, &fake, "target").await;
    for form in [vec![], vec![("csrf", "")], vec![("csrf", foreign.as_str())]] {
        for path in ["/logout", "/VM_start", secret_path.as_str()] {
            let mut form = form.clone();
            form.push(("giturl", REPO));
            let response = app.post_form(path, &form).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "POST {path} with {form:?}"
            );
        }
    }
    assert!(is_logged_in(&app).await, "still logged in");
    assert_eq!(
        app.api_vm().await.status(),
        StatusCode::FORBIDDEN,
        "still not registered"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);
    assert!(is_logged_in(&other).await);
}

#[track_caller]
fn assert_security_headers(what: &str, response: &reqwest::Response) {
    let headers = response.headers();
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    let framing = csp.contains("frame-ancestors 'none'")
        || headers
            .get("x-frame-options")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"deny"));
    assert!(framing, "{what}: no framing protection");
    assert!(
        headers
            .get("referrer-policy")
            .is_some_and(|v| v == "no-referrer" || v == "same-origin"),
        "{what}: {:?}",
        headers.get("referrer-policy")
    );
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{what}"
    );
}

/// Check the headers, and that an HTML page has no inline script (which
/// the CSP would block anyway).
async fn check_page(what: &str, response: reqwest::Response) -> StatusCode {
    assert_security_headers(what, &response);
    let status = response.status();
    let html = response.text().await.unwrap();
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        assert!(tag.contains(" src="), "{what}: inline script {tag}");
    }
    assert!(!html.contains(" onclick="), "{what}");
    status
}

#[tokio::test]
async fn every_kind_of_page_carries_the_security_headers() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(1).unwrap();
    })
    .await;
    let visitor = app.new_browser();
    assert_eq!(
        check_page("home", visitor.get("/").await).await,
        StatusCode::OK
    );
    let to_github = visitor.get("/login").await;
    assert_security_headers("the redirect to GitHub", &to_github);
    let failed = visitor.get("/login/callback?code=x&state=y").await;
    assert_eq!(
        check_page("a failed login", failed).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        check_page("not found", visitor.get("/nowhere").await).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        check_page("CSRF", visitor.post_form("/logout", &[]).await).await,
        StatusCode::FORBIDDEN
    );

    github_login(&app, &fake, "careful").await;
    assert_eq!(
        check_page("not registered", app.get("/VM_start").await).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        check_page("invitation", app.get(&app.registration_path()).await).await,
        StatusCode::OK
    );
    register(&app).await;
    for path in ["/", "/VM_start", "/api/vm", "/healthz"] {
        let response = app.get(path).await;
        let status = check_page(path, response).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
    }
    assert_eq!(
        check_page("wrong secret", app.get("/register/wrong").await).await,
        StatusCode::NOT_FOUND
    );
    // A second wrong guess locks this client out.
    let _ = app.get("/register/wrong-again").await;
    let locked = app.get(&app.registration_path()).await;
    assert_eq!(
        check_page("locked out", locked).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn github_mode_never_offers_the_demo_login() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;

    let (_, home) = app.get_page("/").await;
    assert!(!home.contains("/login/demo"), "{home}");
    assert!(!home.contains("demo"), "{home}");
    let response = app.get("/login").await;
    assert!(location(&response).starts_with(&fake.base));

    // Even with a valid CSRF token the demo form logs nobody in.
    github_login(&app, &fake, "honest").await;
    let csrf = app.csrf().await;
    let response = app
        .post_form(
            "/login/demo",
            &[("csrf", &csrf), ("login", "impostor"), ("next", "/")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("honest"), "still the GitHub user: {home}");
    assert!(
        app.store()
            .user_by_login(&login("impostor"))
            .await
            .unwrap()
            .is_none()
    );
    let anonymous = app.new_browser();
    let response = anonymous
        .post_form("/login/demo", &[("login", "impostor"), ("next", "/")])
        .await;
    assert!(
        matches!(
            response.status(),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
        ),
        "{}",
        response.status()
    );
    assert!(!is_logged_in(&anonymous).await);
}
