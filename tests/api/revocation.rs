//! A revocation sticks: the registration link that let a user in does not
//! let them in again. Only an admin allowing them (`/admin`, `users add`)
//! lifts it; `users import` of the old list does not.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::domain::{GithubId, Login};
use std::process::Command;

async fn app_with_admin() -> TestApp {
    spawn_app_with(TestOptions {
        configure: |c| c.registration.admins = vec![Login::parse("boss").unwrap().into()],
        ..TestOptions::default()
    })
    .await
}

fn demo_id(name: &str) -> GithubId {
    GithubId::for_demo(&Login::parse(name).unwrap())
}

/// The admin presses `action` ("revoke" or "allow") for `name` on /admin.
async fn admin_presses(boss: &Browser, action: &str, name: &str) {
    let (status, page) = boss.get_page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/admin/users/{}/{action}", demo_id(name));
    assert!(
        page.contains(&path),
        "no {action} button for {name}: {page}"
    );
    let response = boss.post_form(&path, &[("csrf", &csrf_from(&page))]).await;
    assert_is_redirect_to(&response, "/admin");
}

async fn assert_withdrawn_page(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = unescape(&response.text().await.unwrap());
    assert!(page.contains("Your access was withdrawn"), "{page}");
    assert!(page.contains("Ask the course staff"), "{page}");
}

#[tokio::test]
async fn a_revoked_user_is_not_registered_again_by_the_same_link() {
    let app = app_with_admin().await;
    app.login_registered("gone").await;
    let boss = app.new_browser();
    boss.login("boss").await;
    admin_presses(&boss, "revoke", "gone").await;

    // The same link, opened and pressed again.
    assert_withdrawn_page(app.get(&app.registration_path()).await).await;
    let csrf = app.csrf().await;
    let pressed = app
        .post_form(&app.registration_path(), &[("csrf", &csrf)])
        .await;
    assert_withdrawn_page(pressed).await;
    let user = app.store().user(demo_id("gone")).await.unwrap().unwrap();
    assert!(!user.is_registered(), "{user:?}");
    assert_withdrawn_page(app.get("/VM_start").await).await;
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("Your access was withdrawn"), "{home}");

    // A link made afterwards does not help either.
    let (_, admin_page) = boss.get_page("/admin").await;
    let made = boss
        .post_form(
            "/admin/links",
            &[("csrf", &csrf_from(&admin_page)), ("label", "Retake")],
        )
        .await;
    let made = made.text().await.unwrap();
    let link = made
        .split(&format!("{}/register/", app.base))
        .nth(1)
        .and_then(|rest| rest.split(['<', '"']).next())
        .expect("the new link is shown");
    let path = format!("/register/{link}");
    assert_withdrawn_page(app.get(&path).await).await;

    // Until the admin allows them again.
    admin_presses(&boss, "allow", "gone").await;
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
    let user = app.store().user(demo_id("gone")).await.unwrap().unwrap();
    assert!(user.is_registered() && !user.is_withdrawn(), "{user:?}");
}

#[tokio::test]
async fn users_add_lifts_a_revocation_and_users_import_does_not() {
    let app = spawn_app().await;
    app.login_registered("gone").await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(args)
            .env("STACKBINDER_DATABASE__URL", &app.config.database.url)
            .env_remove("STACKBINDER_CONFIG")
            .output()
            .expect("the binary runs");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["users", "remove", "gone"]);

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allowed_users.cfg");
    std::fs::write(&list, "gone\nnewcomer\n").unwrap();
    let said = run(&["users", "import", list.to_str().unwrap()]);
    assert!(said.contains("gone: left out"), "{said}");
    assert!(
        said.contains("1 login(s) allowed, 1 revoked login(s) left out"),
        "{said}"
    );
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::FORBIDDEN);
    assert_withdrawn_page(app.get(&app.registration_path()).await).await;

    let said = run(&["users", "add", "gone"]);
    assert!(said.contains("gone: registered"), "{said}");
    assert_eq!(app.get("/VM_start").await.status(), StatusCode::OK);
}
