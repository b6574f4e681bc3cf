//! `registration.admins` and `registration.blocked_users` hold GitHub
//! accounts, not names: a login is tied to the account that first logs in
//! with it, and `id:1234` names an account directly. GitHub lets accounts
//! rename, and anyone may take a login its owner gave up.

use crate::fake_github::*;
use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::config::GithubUser;

fn entry(raw: &str) -> GithubUser {
    raw.parse().expect("a login or id:N")
}

async fn sees_admin(browser: &Browser) -> bool {
    browser.get("/admin").await.status() == StatusCode::OK
}

#[tokio::test]
async fn a_renamed_account_cannot_take_an_admins_old_name() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |c| c.registration.admins = vec![entry("teacher")]).await;
    let teacher = github_login(&app, &fake, "teacher").await;
    assert!(sees_admin(&app).await);

    // The teacher renames; another account takes the freed name.
    fake.rename_user(teacher, "teacher-2");
    let eve = fake.add_user("eve");
    fake.rename_user(eve, "teacher");
    let impostor = app.new_browser();
    github_login(&impostor, &fake, "teacher").await;
    assert!(
        !sees_admin(&impostor).await,
        "the account that took the name is no admin"
    );
    assert_eq!(
        impostor.get("/VM_start").await.status(),
        StatusCode::FORBIDDEN,
        "nor allowed in as one"
    );

    // The teacher, under the new name, still is.
    let renamed = app.new_browser();
    github_login(&renamed, &fake, "teacher-2").await;
    assert!(sees_admin(&renamed).await);
}

#[tokio::test]
async fn a_blocked_user_cannot_rename_back_in() {
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |c| {
        c.registration.blocked_users = vec![entry("mallory")];
    })
    .await;
    let response = github_login_from(&app, &fake, "/login", "mallory").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let mallory = fake.add_user("mallory");
    fake.rename_user(mallory, "totally-new-user");
    let response = github_login_from(&app.new_browser(), &fake, "/login", "totally-new-user").await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the account is blocked, whatever its name"
    );

    // Whoever takes the name "mallory" now is somebody else.
    let other = fake.add_user("innocent");
    fake.rename_user(other, "mallory");
    let browser = app.new_browser();
    github_login(&browser, &fake, "mallory").await;
    assert!(is_logged_in(&browser).await);
}

#[tokio::test]
async fn a_user_blocked_by_name_after_logging_in_is_tied_to_that_account() {
    // The name was added to the configuration after the user's first
    // login: at start it is tied to the account the database knows.
    let fake = FakeGithub::start().await;
    let mut app = spawn_with_github(&fake, |_| {}).await;
    let trudy = github_login(&app, &fake, "trudy").await;
    app.config.registration.blocked_users = vec![entry("trudy")];
    app.restart().await;
    fake.rename_user(trudy, "trudy-renamed");
    let response = github_login_from(&app.new_browser(), &fake, "/login", "trudy-renamed").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn ids_in_the_lists_match_the_account_whatever_its_login() {
    let fake = FakeGithub::start().await;
    let prof = fake.add_user("prof");
    let troll = fake.add_user("troll");
    let app = spawn_with_github(&fake, move |c| {
        c.registration.admins = vec![entry(&format!("id:{prof}"))];
        c.registration.blocked_users = vec![entry(&format!("id:{troll}"))];
    })
    .await;
    fake.rename_user(prof, "professor");
    github_login(&app, &fake, "professor").await;
    assert!(sees_admin(&app).await);

    fake.rename_user(troll, "prof");
    let response = github_login_from(&app.new_browser(), &fake, "/login", "prof").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
