//! `/admin`: only for `registration.admins`; its levers work and need CSRF.

use crate::helpers::{REPO, TestOptions, csrf_from, spawn_app_with, unescape};
use reqwest::StatusCode;
use stackbinder::domain::Login;

async fn app_with_admin() -> crate::helpers::TestApp {
    spawn_app_with(TestOptions {
        configure: |c| c.registration.admins = vec![Login::parse("boss").unwrap().into()],
        ..TestOptions::default()
    })
    .await
}

#[tokio::test]
async fn the_admin_page_is_invisible_to_everyone_but_admins() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    assert_eq!(app.get("/admin").await.status(), StatusCode::NOT_FOUND);

    let boss = app.new_browser();
    // Admins need no registration link.
    boss.login("boss").await;
    let (status, page) = boss.get_page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Registration links") && page.contains("ada"));
    let (_, home) = boss.get_page("/").await;
    assert!(home.contains("href=\"/admin\""));
}

#[tokio::test]
async fn an_admin_sees_every_vm_and_can_delete_any() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    let id = view["id"].as_str().unwrap();

    let boss = app.new_browser();
    boss.login("boss").await;
    let (_, page) = boss.get_page("/admin").await;
    assert!(page.contains(REPO) && page.contains(&format!("/admin/vms/{id}/delete")));
    let csrf = csrf_from(&page);

    let forged = boss
        .post_form(&format!("/admin/vms/{id}/delete"), &[("csrf", "nope")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.api_vm_json().await["state"], "ready");

    let response = boss
        .post_form(&format!("/admin/vms/{id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.wait_for_view(&app.browser, "deleted", |v| v["state"] == "deleted")
        .await;
    assert_eq!(app.cloud.server_count(), 0);
}

#[tokio::test]
async fn revoking_a_user_deletes_their_vm_and_locks_them_out_at_once() {
    let app = app_with_admin().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let ada = app
        .store()
        .user_by_login(&Login::parse("ada").unwrap())
        .await
        .unwrap()
        .unwrap();

    let boss = app.new_browser();
    boss.login("boss").await;
    let csrf = boss.csrf().await;
    let response = boss
        .post_form(
            &format!("/admin/users/{}/revoke", ada.github_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let (status, _) = app.get_page("/VM_start").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "ada's session no longer launches"
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(app.cloud.server_count(), 0, "ada's VM is gone");
}

#[tokio::test]
async fn an_admin_makes_a_registration_link_that_is_shown_once_and_works() {
    let app = app_with_admin().await;
    let boss = app.new_browser();
    boss.login("boss").await;
    let csrf = boss.csrf().await;
    let response = boss
        .post_form(
            "/admin/links",
            &[
                ("csrf", &csrf),
                ("label", "Course 101"),
                ("expires_in_days", "7"),
                ("max_uses", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = unescape(&response.text().await.unwrap());
    let start = page
        .find("<code id=\"new-link\">")
        .expect("the new link is shown")
        + 20;
    let link = &page[start..start + page[start..].find('<').unwrap()];
    let path = link.trim_start_matches(&app.base);

    let student = app.new_browser();
    student.login("ada").await;
    let (_, invitation) = student.get_page(path).await;
    assert!(invitation.contains("Course 101"));
    let csrf = csrf_from(&invitation);
    let registered = student.post_form(path, &[("csrf", &csrf)]).await;
    assert_eq!(registered.status(), StatusCode::OK);

    // Used up now: the next student gets a clear 410.
    let other = app.new_browser();
    other.login("bob").await;
    assert_eq!(other.get(path).await.status(), StatusCode::GONE);
    let (_, admin) = boss.get_page("/admin").await;
    assert!(admin.contains("usedup") && !admin.contains("new-link"));
}
