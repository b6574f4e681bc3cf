//! The interface a launch opens (`?ide=`, the confirmation page's choice,
//! `ide` in the API): its path becomes the urlpath, and an interface the
//! environment lacks is said on the status page instead of linked to. The
//! simulated VM's Jupyter is an environment with JupyterLab and the classic
//! Notebook only, as repo2docker builds one from a requirements.txt.

use crate::api_v1_tokens::make_token;
use crate::helpers::{TestApp, csrf_from, spawn_app, unescape};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REPO: &str = "https://github.com/org/repo";

async fn registered_app() -> TestApp {
    let app = spawn_app().await;
    app.login_registered("alice").await;
    app
}

/// Open the launch link with `?ide=`, then press Launch with what the page
/// has selected.
async fn launch_with_ide(app: &TestApp, ide: &str) -> String {
    let (status, page) = app
        .get_page(&format!("/VM_start?giturl={REPO}&ide={ide}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let response = app
        .post_form(
            "/VM_start",
            &[("csrf", &csrf_from(&page)), ("giturl", REPO), ("ide", ide)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    page
}

#[tokio::test]
async fn the_ide_in_a_launch_link_is_selected_and_becomes_the_urlpath() {
    let app = registered_app().await;

    let page = launch_with_ide(&app, "notebook").await;

    assert!(
        page.contains("value=\"notebook\" checked"),
        "the link's interface is selected: {page}"
    );
    assert!(
        page.contains("ide=notebook"),
        "the share link keeps it: {page}"
    );
    let ready = app.wait_for_state("ready").await;
    assert_eq!(ready["url_path"], "tree");
    assert_eq!(ready["ide"], "notebook");
    assert!(ready["ide_missing"].is_null(), "{ready:#}");
    let link = ready["jupyter_url"].as_str().unwrap();
    assert!(link.contains("/user/alice/tree?token="), "{link}");
}

#[tokio::test]
async fn an_ide_the_environment_lacks_is_said_instead_of_linked_to() {
    let app = registered_app().await;

    launch_with_ide(&app, "rstudio").await;
    let ready = app.wait_for_state("ready").await;

    let said = ready["ide_missing"].as_str().expect("the status says so");
    assert!(
        said.starts_with("This environment does not provide RStudio"),
        "{said}"
    );
    let link = ready["jupyter_url"].as_str().unwrap();
    assert!(
        link.contains("/user/alice/?token=") && !link.contains("rstudio"),
        "the link opens Jupyter's default, not a page that is not there: {link}"
    );
    let (_, status_page) = app.get_page("/VM_status").await;
    assert!(
        unescape(&status_page).contains("This environment does not provide RStudio"),
        "{status_page}"
    );
}

#[tokio::test]
async fn the_confirmation_page_offers_every_ide_with_jupyterlab_first() {
    let app = registered_app().await;

    let (_, page) = app.get_page(&format!("/VM_start?giturl={REPO}")).await;

    let offered: Vec<&str> = page
        .match_indices("name=\"ide\" value=\"")
        .map(|(at, m)| {
            let value = &page[at + m.len()..];
            &value[..value.find('"').unwrap()]
        })
        .collect();
    assert_eq!(offered, ["lab", "notebook", "rstudio", "vscode", "desktop"]);
    assert!(page.contains("value=\"lab\" checked"), "{page}");
    // A link with a path of its own keeps it, and offers no choice.
    let (_, page) = app
        .get_page(&format!(
            "/VM_start?giturl={REPO}&urlpath=voila/render/a.ipynb"
        ))
        .await;
    assert!(!page.contains("name=\"ide\""), "{page}");
}

#[tokio::test]
async fn an_unknown_ide_or_an_ide_with_a_path_is_refused() {
    let app = registered_app().await;
    for (query, says) in [
        ("ide=emacs", "is not an interface this server opens"),
        ("ide=rstudio&urlpath=lab", "not both"),
    ] {
        let (status, page) = app
            .get_page(&format!("/VM_start?giturl={REPO}&{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(unescape(&page).contains(says), "{query}: {page}");
    }
}

#[tokio::test]
async fn the_api_takes_an_ide() {
    let app = registered_app().await;
    let token = make_token(&app.browser, "script", &["vm_launch"]).await;
    let launch = |body: Value| {
        app.client
            .post(app.url("/api/v1/vm"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };

    let refused = launch(json!({"repo": REPO, "ide": "emacs"})).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let response = launch(json!({"repo": REPO, "ide": "vscode"}))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let vm: Value = response.json().await.unwrap();
    assert_eq!(vm["url_path"], "vscode");
    assert_eq!(vm["ide"], "vscode");
}
