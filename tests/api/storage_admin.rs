//! Admins and users' storage on the simulated cloud: `/admin`'s storage
//! table and its delete button (CSRF, the owner's login typed), the admin
//! API (`GET /api/v1/storage`, `DELETE /api/v1/storage/{login}`), and
//! revoking a user with and without `purge`.

use crate::api_v1_tokens::{api, make_token};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use stackbinder::domain::Login;

fn options() -> TestOptions {
    TestOptions {
        configure: |c| {
            c.registration.admins = vec![Login::parse("boss").unwrap().into()];
            c.storage.home_volume_gb = 10;
            c.provision.reconcile_interval_seconds = 0;
        },
        ..TestOptions::default()
    }
}

/// `browser` logs in as `login`, launches, and waits until the VM is
/// ready; its home volume's id.
async fn launched(app: &TestApp, browser: &Browser, login: &str) -> String {
    browser.login_registered(login).await;
    assert_is_redirect_to(&browser.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state_of(browser, "ready").await;
    let created = app.cloud.created();
    let mine = created.iter().rev().find(|s| s.name.ends_with(login));
    mine.and_then(|s| s.home_volume.clone())
        .expect("a home volume")
}

async fn deleted_vm(app: &TestApp, browser: &Browser) {
    assert_is_redirect_to(&browser.delete_vm().await, "/VM_status");
    app.wait_for_state_of(browser, "deleted").await;
}

#[tokio::test]
async fn an_admin_deletes_a_users_storage_on_the_admin_page_by_typing_their_login() {
    // Arrange
    let app = spawn_app_with(options()).await;
    let home = launched(&app, &app.browser, "ines").await;
    let boss = app.new_browser();
    boss.login("boss").await;
    let (_, page) = boss.get_page("/admin").await;
    let csrf = csrf_from(&page);
    let delete = |form: Vec<(&'static str, String)>| {
        let boss = &boss;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            boss.post_form("/admin/storage/ines/delete", &form).await
        }
    };

    // Act + Assert: forged, unconfirmed, and while her VM uses it.
    let forged = delete(vec![("confirm", "ines".into())]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = delete(vec![("csrf", csrf.clone()), ("confirm", "boss".into())]).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let in_use = delete(vec![("csrf", csrf.clone()), ("confirm", "ines".into())]).await;
    assert_eq!(in_use.status(), StatusCode::CONFLICT);
    assert!(
        in_use
            .text()
            .await
            .unwrap()
            .contains("delete your VM first")
    );
    assert!(app.cloud.has_volume(&home));
    let (_, someone) = app.new_browser().get_page("/admin").await;

    // Act: her VM goes; then the storage.
    deleted_vm(&app, &app.browser).await;
    let deleted = delete(vec![("csrf", csrf), ("confirm", "INES".into())]).await;

    // Assert
    let table = &page[page.find("id=\"storage\"").expect("a storage table")..];
    assert!(
        table.contains("<td>ines</td>") && table.contains("10 GB"),
        "{table}"
    );
    assert!(table.contains("in use by a VM"), "{table}");
    assert!(!someone.contains(&home), "the storage table is for admins");
    assert_is_redirect_to(&deleted, "/admin");
    assert!(!app.cloud.has_volume(&home), "gone from the cloud");
    let (_, after) = boss.get_page("/admin").await;
    assert!(after.contains("No storage."), "{after}");
}

#[tokio::test]
async fn an_admin_token_lists_and_deletes_storage() {
    // Arrange
    let app = spawn_app_with(options()).await;
    let home = launched(&app, &app.browser, "ines").await;
    let boss = app.new_browser();
    boss.login("boss").await;
    let token = make_token(&boss, "admin", &["admin"]).await;
    let delete = || api(&boss, Method::DELETE, "/api/v1/storage/ines", Some(&token));

    // Act
    let (status, listed) = api(&boss, Method::GET, "/api/v1/storage", Some(&token)).await;
    let (busy, in_use) = delete().await;
    deleted_vm(&app, &app.browser).await;
    let (gone, _) = delete().await;
    let (again, none) = delete().await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["login"], "ines", "{listed}");
    assert_eq!(listed[0]["volume_id"], home.as_str());
    assert_eq!(listed[0]["size_gb"], 10);
    assert_eq!(
        (busy, &in_use["code"]),
        (StatusCode::CONFLICT, &"storage_in_use".into())
    );
    assert_eq!(gone, StatusCode::NO_CONTENT);
    assert!(!app.cloud.has_volume(&home));
    assert_eq!(
        (again, &none["code"]),
        (StatusCode::NOT_FOUND, &"no_such_storage".into())
    );
}

#[tokio::test]
async fn revoking_keeps_the_storage_unless_purged_and_a_purge_waits_for_the_vm_to_go() {
    // Arrange: ines and jo each have a VM and storage.
    let app = spawn_app_with(options()).await;
    let ines_home = launched(&app, &app.browser, "ines").await;
    let jo = app.new_browser();
    let jo_home = launched(&app, &jo, "jo").await;
    let boss = app.new_browser();
    boss.login("boss").await;
    let token = make_token(&boss, "admin", &["admin"]).await;
    let id = |login: &'static str| {
        let app = &app;
        async move {
            let login = Login::parse(login).unwrap();
            app.store()
                .user_by_login(&login)
                .await
                .unwrap()
                .unwrap()
                .github_id
        }
    };
    let revoke = |path: String| {
        let (boss, token) = (&boss, &token);
        async move { api(boss, Method::POST, &path, Some(token)).await }
    };

    // Act
    let (_, kept) = revoke(format!("/api/v1/users/{}/revoke", id("jo").await)).await;
    let (status, purged) = revoke(format!(
        "/api/v1/users/{}/revoke?purge=true",
        id("ines").await
    ))
    .await;
    let before_vm_gone = app.cloud.has_volume(&ines_home);
    // Revoked, they see no status page: the cloud tells.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.cloud.server_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "their servers were deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for login in ["ines", "jo"] {
        while app
            .store()
            .live_vm_of(id(login).await)
            .await
            .unwrap()
            .is_some()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{login}'s VM was deleted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
    app.provisioner().clean_up_storage().await.unwrap();

    // Assert
    assert_eq!(kept["storage"], "kept", "{kept}");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(purged["storage"], "deleted_with_vm", "{purged}");
    assert!(before_vm_gone, "not while her VM holds it");
    assert!(
        !app.cloud.has_volume(&ines_home),
        "deleted once her VM was gone"
    );
    assert!(app.cloud.has_volume(&jo_home), "jo's storage is kept");
    assert!(
        app.store()
            .home_volume(id("ines").await)
            .await
            .unwrap()
            .is_none()
    );
}
