//! One VM per user, however many launches race.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_launches_by_one_user_make_one_vm() {
    let app = spawn_app().await;
    app.login_registered("racer").await;
    let page = app.confirm_page(REPO, "main", "lab").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_from(&page.text().await.unwrap());
    let form = [
        ("csrf", csrf.as_str()),
        ("giturl", REPO),
        ("ref", "main"),
        ("urlpath", "lab"),
    ];

    let responses = join_all((0..50).map(|_| app.post_form("/VM_start", &form))).await;
    let mut answers = Vec::new();
    for response in &responses {
        answers.push((
            response.status(),
            response.headers().get("location").cloned(),
        ));
    }
    for (status, location) in &answers {
        assert_eq!(
            *status,
            StatusCode::SEE_OTHER,
            "every launch answers 303: {answers:?}"
        );
        assert_eq!(location.as_ref().unwrap(), "/VM_status");
    }

    let view = app.wait_for_state("ready").await;
    assert_eq!(view["url_path"], "lab");
    assert_eq!(app.cloud.calls(Op::CreateServer), 1);
    assert_eq!(app.cloud.created().len(), 1);
    assert_eq!(app.cloud.server_count(), 1);
    assert_eq!(app.cloud.volume_count(), 1);
    let vms = app.store().list_vms(true).await.unwrap();
    assert_eq!(vms.len(), 1, "{vms:#?}");
    assert_eq!(vms[0].id.to_string(), view["id"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_launching_at_once_each_get_their_own_vm() {
    let app = spawn_app().await;
    let names = ["ann", "ben", "cat", "dan", "eve"];
    let mut browsers = Vec::new();
    for name in names {
        let browser = app.new_browser();
        browser.login_registered(name).await;
        browsers.push(browser);
    }
    let launches = browsers
        .iter()
        .flat_map(|b| (0..5).map(move |_| b.launch(REPO, "main", "")));
    for response in join_all(launches).await {
        assert_is_redirect_to(&response, "/VM_status");
    }
    for browser in &browsers {
        app.wait_for_state_of(browser, "ready").await;
    }

    let mut created: Vec<String> = app.cloud.created().into_iter().map(|s| s.name).collect();
    created.sort();
    assert_eq!(created, names);
    assert_eq!(app.cloud.calls(Op::CreateServer), 5);
    assert_eq!(app.cloud.server_count(), 5);
    assert_eq!(app.store().list_vms(true).await.unwrap().len(), 5);
    for (browser, name) in browsers.iter().zip(names) {
        assert_eq!(browser.api_vm_json().await["name"], name);
    }
}
