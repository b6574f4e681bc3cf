//! Sessions are written only when something is stored in them or their
//! idle expiry is due to be pushed back (at most once a minute), and a
//! session that logout deleted stays deleted, whatever requests were under
//! way when it was.

use crate::fake_github::*;
use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::config::OrgOrTeam;
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::Record;

async fn session_rows(app: &TestApp) -> i64 {
    session_count(app.store()).await
}

fn session_id(browser: &Browser) -> String {
    let cookie = browser.session_cookie().expect("a session cookie");
    cookie.split_once('=').unwrap().1.to_owned()
}

/// The stored row of session `id`: its record, and its `expiry_date`.
async fn stored_session(app: &TestApp, id: &str) -> Option<(Record, OffsetDateTime)> {
    let row = session_row(app.store(), id).await;
    row.map(|(data, expiry)| (rmp_serde::from_slice(&data).unwrap(), expiry))
}

/// Move session `id` `by` into the past: its last renewal and its expiry
/// (what waiting `by` would do, without waiting).
pub async fn age_session(app: &TestApp, id: &str, by: Duration) {
    let (mut record, _) = stored_session(app, id).await.expect("the session row");
    let renewed = record.data["session.renewed_at"].as_i64().unwrap();
    record.data.insert(
        "session.renewed_at".into(),
        serde_json::json!(renewed - by.as_secs() as i64),
    );
    record.expiry_date -= by;
    let data = rmp_serde::to_vec(&record).unwrap();
    set_session_row(app.store(), id, &data, record.expiry_date).await;
}

fn sets_session_cookie(response: &reqwest::Response) -> bool {
    response.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .unwrap()
            .starts_with(stackbinder::web::SESSION_COOKIE)
    })
}

#[tokio::test]
async fn anonymous_visits_store_no_session_rows() {
    let app = spawn_app().await;
    for _ in 0..50 {
        let response = plain_client().get(app.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!sets_session_cookie(&response), "no cookie for nothing");
    }
    assert_eq!(session_rows(&app).await, 0, "50 anonymous GET / left rows");

    // A page with a form stores its CSRF token: one row for that visitor.
    app.get_page("/login").await;
    assert_eq!(session_rows(&app).await, 1);
}

#[tokio::test]
async fn a_session_is_written_only_when_it_changed_or_its_expiry_is_due() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.server.session_idle_minutes = NonZero::new(5).unwrap()
    })
    .await;
    github_login(&app, &fake, "steady").await;
    register(&app).await;
    let id = session_id(&app);
    let (_, expiry) = stored_session(&app, &id).await.unwrap();

    for _ in 0..5 {
        let response = app.get("/VM_start").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!sets_session_cookie(&response), "nothing changed");
    }
    let (_, unchanged) = stored_session(&app, &id).await.unwrap();
    assert_eq!(unchanged, expiry, "five reads wrote nothing");

    // A minute on, the next request pushes the idle expiry back.
    age_session(&app, &id, Duration::from_secs(61)).await;
    let (_, aged) = stored_session(&app, &id).await.unwrap();
    let response = app.get("/VM_start").await;
    assert!(
        sets_session_cookie(&response),
        "the cookie's Max-Age is renewed"
    );
    let (_, renewed) = stored_session(&app, &id).await.unwrap();
    assert!(renewed > aged, "{aged} → {renewed}");
}

#[tokio::test]
async fn logout_is_not_undone_by_slow_concurrent_requests() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs =
            vec![serde_json::from_value::<OrgOrTeam>(serde_json::json!("physics-lab")).unwrap()];
    })
    .await;
    fake.set_org_membership("physics-lab", "quinn", "active");
    github_login(&app, &fake, "quinn").await;
    let cookie = app.session_cookie().unwrap();
    let id = session_id(&app);
    let confirm = app.confirm_page(REPO, "main", "").await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let csrf = csrf_from(&confirm.text().await.unwrap());

    // Three launches are held at GitHub's membership check (each loaded
    // the session before the logout); meanwhile the user logs out and
    // leaves the organization, so each launch then changes the session.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    fake.set_faults(Faults {
        membership_gate: Some(gate.clone()),
        ..Faults::default()
    });
    let checks_before = fake.requests_to("/memberships/orgs/physics-lab").len();
    let form = [("csrf", csrf.as_str()), ("giturl", REPO), ("ref", "main")];
    let launches =
        futures_util::future::join_all((0..3).map(|_| app.post_form("/VM_start", &form)));
    let logout = async {
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake.requests_to("/memberships/orgs/physics-lab").len() < checks_before + 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the launches reach GitHub"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let response = app.post_form("/logout", &[("csrf", &csrf)]).await;
        assert_is_redirect_to(&response, "/");
        fake.remove_org_member("physics-lab", "quinn");
        gate.add_permits(3);
    };
    let (answers, ()) = tokio::join!(launches, logout);
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }

    assert!(
        stored_session(&app, &id).await.is_none(),
        "the logged-out session was written back"
    );
    let with_old_cookie = plain_client()
        .get(app.url("/api/vm"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(with_old_cookie.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.api_vm().await.status(), StatusCode::UNAUTHORIZED);
}
