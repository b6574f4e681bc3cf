//! `launch.allowed_hosts` and `launch.banned_repos`: a repository the
//! operator keeps out gets a clear 403 page on the confirmation and on the
//! launch itself, and nothing is recorded or created.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;
use stackbinder::domain::RepoPattern;

async fn app_with_policy() -> TestApp {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.launch.allowed_hosts = vec!["github.com".into()];
            c.launch.banned_repos =
                vec![RepoPattern::parse("https://github.com/evil-org/*").unwrap()];
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("olga").await;
    app
}

/// GET and POST `/VM_start` for `giturl` both answer 403 with `message`.
async fn assert_kept_out(app: &TestApp, giturl: &str, message: &str) {
    let response = app.confirm_page(giturl, "", "").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "GET {giturl}");
    let page = unescape(&response.text().await.unwrap());
    assert!(page.contains("That cannot be launched"), "{page}");
    assert!(page.contains(message), "expected {message:?} in\n{page}");
    assert!(
        !page.contains(">Launch</button>"),
        "no launch button: {page}"
    );

    let csrf = app.csrf().await;
    let response = app
        .post_form("/VM_start", &[("csrf", csrf.as_str()), ("giturl", giturl)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {giturl}");
    let page = unescape(&response.text().await.unwrap());
    assert!(page.contains(message), "expected {message:?} in\n{page}");
}

#[tokio::test]
async fn a_repository_from_a_host_not_allowed_is_refused_with_a_page() {
    let app = app_with_policy().await;

    assert_kept_out(
        &app,
        "https://gitlab.com/some/project",
        "this server launches repositories from github.com only, not from gitlab.com",
    )
    .await;

    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);
    assert!(app.store().list_vms(true).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_banned_repository_is_refused_with_a_page_and_others_launch() {
    let app = app_with_policy().await;

    for banned in [
        "https://github.com/evil-org/miner",
        "https://github.com/Evil-Org/miner.git",
    ] {
        assert_kept_out(&app, banned, "its operator has banned it").await;
    }
    assert!(app.store().list_vms(true).await.unwrap().is_empty());
    assert_eq!(app.cloud.calls(Op::CreateServer), 0);

    let fine = "https://github.com/evil-org-fan/notebooks";
    let response = app.confirm_page(fine, "", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_is_redirect_to(&app.launch(fine, "", "").await, "/VM_status");
    app.wait_for_state("ready").await;
}
