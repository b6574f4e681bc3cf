//! `/register/{secret}` with GitHub login: the way through the login and
//! back, links with labels, expiry and use limits, a plain 404 for wrong
//! secrets and a lockout for clients that keep guessing.

use crate::fake_github::*;
use crate::helpers::*;
use chrono::Utc;
use reqwest::StatusCode;
use stackbinder::domain::GithubId;
use stackbinder::store::NewLink;
use std::num::NonZero;

/// A link in the store, as `users link create` makes one; returns its
/// path and id.
async fn create_link(
    app: &TestApp,
    label: &str,
    expires_at: Option<chrono::DateTime<Utc>>,
    max_uses: Option<i64>,
) -> (String, i64) {
    let secret = stackbinder::secret::generate();
    let link = app
        .store()
        .create_link(NewLink {
            label,
            secret_hash: &stackbinder::secret::hash(&secret),
            created_by: "test",
            expires_at,
            max_uses,
        })
        .await
        .unwrap();
    (format!("/register/{secret}"), link.id)
}

/// Open `path` and press Register; the answer to the POST.
async fn register_at(browser: &Browser, path: &str) -> reqwest::Response {
    let (status, page) = browser.get_page(path).await;
    assert_eq!(status, StatusCode::OK, "the invitation: {page}");
    let csrf = csrf_from(&page);
    browser.post_form(path, &[("csrf", &csrf)]).await
}

async fn registered_via(app: &TestApp, id: i64) -> Option<String> {
    let user = app.store().user(GithubId(id)).await.unwrap().unwrap();
    assert_eq!(user.is_registered(), user.registered_via.is_some());
    user.registered_via
}

#[tokio::test]
async fn a_logged_out_visitor_of_the_link_logs_in_and_comes_back_to_it() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let path = app.registration_path();

    let response = app.get(&path).await;
    assert!(
        location(&response).starts_with("/login?next=%2Fregister%2F"),
        "{response:?}"
    );
    let response = github_login_from(&app, &fake, &path, "newcomer").await;
    assert_is_redirect_to(&response, &path);
    let id = fake.add_user("newcomer");
    assert_eq!(
        registered_via(&app, id).await,
        None,
        "opening is not joining"
    );

    let (status, page) = app.get_page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Join this stackbinder"), "{page}");
    assert!(page.contains("newcomer"), "{page}");
    assert!(!page.contains(app.registration_secret()), "{page}");

    let response = register_at(&app, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("You are registered"), "{page}");
    assert!(
        page.contains("id=\"launch-form\"") && page.contains("action=\"/VM_start\""),
        "the page offers the launch form: {page}"
    );
    assert_eq!(
        registered_via(&app, id).await.as_deref(),
        Some("link: registration link")
    );
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    assert!(
        fake.requests().iter().all(|r| {
            !r.query
                .as_deref()
                .unwrap_or("")
                .contains(app.registration_secret())
                && !r.body.contains(app.registration_secret())
        }),
        "the secret does not travel to GitHub (the state is random)"
    );

    // Opening the link again says so, and registers nothing twice.
    let (status, page) = app.get_page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("You are already registered"), "{page}");
}

#[tokio::test]
async fn a_link_from_the_store_registers_under_its_label() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let (path, link) = create_link(&app, "Physics 101", None, Some(30)).await;
    let id = github_login(&app, &fake, "student").await;

    let (status, page) = app.get_page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Physics 101"), "the label is shown: {page}");
    let response = register_at(&app, &path).await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(
        registered_via(&app, id).await.as_deref(),
        Some("link: Physics 101")
    );
    let stored = app.store().link(link).await.unwrap().unwrap();
    assert_eq!(stored.uses, 1);
    assert_eq!(stored.label, "Physics 101");

    // Pressing the button again counts nothing.
    let csrf = app.csrf().await;
    let response = app.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.store().link(link).await.unwrap().unwrap().uses, 1);
}

#[tokio::test]
async fn a_wrong_secret_is_a_plain_not_found() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let secret = app.registration_secret().to_owned();
    let mut near_miss = secret.clone();
    let last = near_miss.pop().unwrap();
    near_miss.push(if last == 'A' { 'B' } else { 'A' });
    let wrong = [
        "/register/guess".to_owned(),
        format!("/register/{near_miss}"),
        format!("/register/{}", &secret[..20]),
    ];

    // Logged out: a plain 404, not a way to the login (that would tell a
    // right secret from a wrong one).
    let visitor = app.new_browser();
    for path in &wrong {
        let (status, page) = visitor.get_page(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.contains("There is nothing at this address"), "{page}");
        assert!(!page.contains("registration link"), "{page}");
    }

    let id = github_login(&app, &fake, "guesser").await;
    let csrf = app.csrf().await;
    for path in &wrong {
        assert_eq!(app.get(path).await.status(), StatusCode::NOT_FOUND);
        let response = app.post_form(path, &[("csrf", &csrf)]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    assert_eq!(registered_via(&app, id).await, None);
}

#[tokio::test]
async fn a_client_that_keeps_guessing_is_locked_out_even_for_the_right_secret() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(3).unwrap();
        config.registration.guess_window_minutes = NonZero::new(10).unwrap();
    })
    .await;
    let id = github_login(&app, &fake, "brute").await;
    let right = app.registration_path();
    assert_eq!(app.get(&right).await.status(), StatusCode::OK);

    let mut statuses = Vec::new();
    for n in 0..6 {
        statuses.push(app.get(&format!("/register/guess-{n}")).await.status());
    }
    assert_eq!(
        &statuses[..3],
        [StatusCode::NOT_FOUND; 3],
        "the allowed wrong guesses are plain 404s: {statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );

    // Now every registration request from this client is refused.
    let response = app.get(&right).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many attempts"), "{page}");

    let csrf = app.csrf().await;
    let response = app.post_form(&right, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // The lockout is the guesser's: another visitor at the same address
    // (a classmate behind the same proxy) is sent on to log in as usual.
    let classmate = app.new_browser();
    assert_eq!(classmate.get(&right).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(registered_via(&app, id).await, None);

    // The rest of the site works.
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn locking_out_one_client_leaves_the_others_alone() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(2).unwrap();
        config.server.trust_forwarded_for = true;
    })
    .await;
    let right = app.registration_path();
    let from = |ip: &'static str, path: String| {
        let client = plain_client();
        let url = app.url(&path);
        async move {
            client
                .get(url)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // A sessionless client meets the address limit (ten sessions' worth).
    for n in 0..=2 * stackbinder::web::ADDRESS_ALLOWANCE {
        from("192.0.2.66", format!("/register/guess-{n}")).await;
    }
    assert_eq!(
        from("192.0.2.66", right.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A classmate behind another address is not affected.
    assert_eq!(
        from("192.0.2.7", right.clone()).await,
        StatusCode::SEE_OTHER,
        "to the login, then back"
    );
    // A forged first entry does not escape the lock: the proxy appends the
    // real address last.
    assert_eq!(
        from("198.51.100.1, 192.0.2.66", right.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_expired_link_is_gone() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let (path, _) = create_link(
        &app,
        "Last term",
        Some(Utc::now() - chrono::Duration::minutes(1)),
        None,
    )
    .await;
    let (live, _) = create_link(
        &app,
        "This term",
        Some(Utc::now() + chrono::Duration::days(1)),
        None,
    )
    .await;

    let anonymous = app.new_browser();
    assert_eq!(anonymous.get(&path).await.status(), StatusCode::GONE);

    let id = github_login(&app, &fake, "latecomer").await;
    let (status, page) = app.get_page(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(
        page.contains("This registration link no longer works"),
        "{page}"
    );
    assert!(page.contains("has expired"), "{page}");
    let csrf = app.csrf().await;
    let response = app.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(registered_via(&app, id).await, None);

    assert_eq!(register_at(&app, &live).await.status(), StatusCode::OK);
    assert_eq!(
        registered_via(&app, id).await.as_deref(),
        Some("link: This term")
    );
}

#[tokio::test]
async fn a_used_up_link_is_gone_for_the_next_user() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let (path, link) = create_link(&app, "One seat", None, Some(1)).await;

    let first = github_login(&app, &fake, "first").await;
    let second_browser = app.new_browser();
    let second = github_login(&second_browser, &fake, "second").await;
    // The second user opened the page before the seat was taken.
    let (status, page) = second_browser.get_page(&path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_from(&page);

    assert_eq!(register_at(&app, &path).await.status(), StatusCode::OK);
    assert_eq!(
        registered_via(&app, first).await.as_deref(),
        Some("link: One seat")
    );

    let response = second_browser.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::GONE);
    let (status, page) = second_browser.get_page(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("used as often as it may"), "{page}");
    assert_eq!(registered_via(&app, second).await, None);
    assert_eq!(app.store().link(link).await.unwrap().unwrap().uses, 1);
}

#[tokio::test]
async fn simultaneous_registrations_never_exceed_max_uses() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let (path, link) = create_link(&app, "Two seats", None, Some(2)).await;
    let mut ready = Vec::new();
    for n in 0..6 {
        let browser = app.new_browser();
        github_login(&browser, &fake, &format!("racer-{n}")).await;
        let (_, page) = browser.get_page(&path).await;
        let csrf = csrf_from(&page);
        ready.push((browser, csrf));
    }

    let presses = ready.iter().map(|(browser, csrf)| {
        let path = path.clone();
        async move {
            browser
                .post_form(&path, &[("csrf", csrf.as_str())])
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(presses).await;

    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let gone = statuses.iter().filter(|s| **s == StatusCode::GONE).count();
    assert_eq!((ok, gone), (2, 4), "{statuses:?}");
    assert_eq!(app.store().link(link).await.unwrap().unwrap().uses, 2);
    let registered = app
        .store()
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.is_registered())
        .count();
    assert_eq!(registered, 2);
}

#[tokio::test]
async fn a_revoked_link_is_not_found() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |_| {}).await;
    let (path, link) = create_link(&app, "Withdrawn", None, None).await;
    let id = github_login(&app, &fake, "too-late").await;
    let (status, page) = app.get_page(&path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_from(&page);

    assert!(app.store().revoke_link(link).await.unwrap());

    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let response = app.post_form(&path, &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(registered_via(&app, id).await, None);
    assert_eq!(app.store().link(link).await.unwrap().unwrap().uses, 0);
}

#[tokio::test]
async fn one_guesser_behind_a_shared_proxy_address_does_not_lock_out_the_class() {
    // Behind a TLS proxy without trust_forwarded_for, every client has the
    // proxy's address (here all come from 127.0.0.1).
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(3).unwrap();
        config.server.trust_forwarded_for = false;
    })
    .await;
    github_login(&app, &fake, "guesser").await;
    for n in 0..4 {
        app.get(&format!("/register/guess-{n}")).await;
    }
    let right = app.registration_path();
    assert_eq!(
        app.get(&right).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser is locked out"
    );

    for name in ["student-1", "student-2"] {
        let student = app.new_browser();
        let id = github_login(&student, &fake, name).await;
        let (status, page) = student.get_page(&right).await;
        assert_eq!(status, StatusCode::OK, "{name}: {page}");
        let response = student
            .post_form(&right, &[("csrf", &csrf_from(&page))])
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert!(registered_via(&app, id).await.is_some(), "{name}");
    }
}

#[tokio::test]
async fn a_guesser_who_throws_its_sessions_away_is_stopped_by_the_address_limit() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(2).unwrap();
    })
    .await;
    // No cookie at all: each guess comes from a new, sessionless client.
    let allowance = 2 * stackbinder::web::ADDRESS_ALLOWANCE;
    for n in 0..allowance {
        let response = plain_client()
            .get(app.url(&format!("/register/guess-{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "guess {n}");
    }
    // One more wrong guess is over the limit: it locks the address out.
    let response = plain_client()
        .get(app.url("/register/one-more"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = plain_client()
        .get(app.url(&app.registration_path()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the whole address is locked: the price of a shared address"
    );
}

#[tokio::test]
async fn a_locked_out_address_has_its_refusals_held_back_and_no_one_else() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.wrong_guesses = NonZero::new(1).unwrap();
        config.server.trust_forwarded_for = true;
        config.server.lockout_hold_ms = 1500;
    })
    .await;
    let from = |ip: &'static str, path: String| {
        let request = plain_client()
            .get(app.url(&path))
            .header("x-forwarded-for", ip);
        async move {
            let asked = std::time::Instant::now();
            let status = request.send().await.unwrap().status();
            (status, asked.elapsed())
        }
    };
    for n in 0..=stackbinder::web::ADDRESS_ALLOWANCE {
        let (status, _) = from("192.0.2.66", format!("/register/guess-{n}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "guess {n}");
    }
    // Locked out: refused, but only after the hold, so a client that never
    // stops asking asks slowly.
    let (status, took) = from("192.0.2.66", app.registration_path()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(took >= std::time::Duration::from_millis(1500), "{took:?}");
    // A classmate at another address is answered as ever.
    let (status, _) = from("192.0.2.7", app.registration_path()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "to the login, then back");
}
