//! The status page and `/api/vm` say which path a launch got (the warm
//! pool or a new VM), whether its environment is prebuilt, and an estimate
//! from the last launches of the same repository on the same path; with no
//! such launch, no estimate (issue #16).

use crate::helpers::{REPO, TestApp, TestOptions, on_test_pool, spawn_app_with, unescape};
use chrono::{DateTime, Duration, Utc};
use stackbinder::config::PinnedRepoConfig;
use stackbinder::domain::{GitRef, RepoSpec};

const OTHER: &str = "https://github.com/binder-examples/conda";

/// The app with its driver stopped (launches stay requested) and REPO at
/// HEAD pinned in `[pool] repos`.
async fn app() -> TestApp {
    spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |c| {
            c.pool.repos = vec![PinnedRepoConfig {
                repo: RepoSpec::parse(REPO).unwrap(),
                git_ref: GitRef::head(),
            }]
        },
        ..TestOptions::default()
    })
    .await
}

/// Make the launch just recorded a past one of `path` that took `seconds`
/// from click to ready, an hour ago, and deleted since.
async fn into_history(app: &TestApp, path: &str, seconds: i64) {
    let asked: DateTime<Utc> = Utc::now() - Duration::hours(1);
    let ready = asked + Duration::seconds(seconds);
    on_test_pool!(app.store(), |pool| sqlx::query(
        "UPDATE vms SET state = 'deleted', launch_path = $1, created_at = $2, \
         ready_at = $3, deleted_at = $3 WHERE state <> 'deleted'"
    )
    .bind(path)
    .bind(asked)
    .bind(ready)
    .execute(pool)
    .await
    .map(drop)
    .unwrap());
}

async fn set_launch_path(app: &TestApp, path: &str) {
    on_test_pool!(app.store(), |pool| sqlx::query(
        "UPDATE vms SET launch_path = $1 WHERE state <> 'deleted'"
    )
    .bind(path)
    .execute(pool)
    .await
    .map(drop)
    .unwrap());
}

async fn status_page(app: &TestApp) -> String {
    let (status, page) = app.get_page("/VM_status").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    unescape(&page)
}

#[tokio::test]
async fn the_estimate_is_the_median_of_the_last_launches_of_the_repository_on_its_path() {
    // Arrange: three cold launches of REPO (100, 400 and 200 s), and
    // launches that must not count: REPO from the pool, another repository.
    let app = app().await;
    app.login_registered("ada").await;
    for seconds in [100, 400, 200] {
        app.launch(REPO, "", "").await;
        into_history(&app, "cold", seconds).await;
    }
    app.launch(REPO, "", "").await;
    into_history(&app, "pool", 5).await;
    app.launch(OTHER, "", "").await;
    into_history(&app, "cold", 1000).await;

    // Act: a cold launch of REPO.
    app.launch(REPO, "", "").await;
    let view = app.api_vm_json().await;
    let page = status_page(&app).await;

    // Assert
    assert_eq!(view["launch_path"], "cold", "{view:#}");
    assert_eq!(view["path"], "booting a new VM");
    assert_eq!(view["prebuilt"], false);
    assert_eq!(view["eta"]["seconds"], 200, "{view:#}");
    assert_eq!(view["eta"]["launches"], 3);
    let created: DateTime<Utc> = view["created_at"].as_str().unwrap().parse().unwrap();
    let ready_by: DateTime<Utc> = view["eta"]["ready_by"].as_str().unwrap().parse().unwrap();
    assert_eq!(ready_by - created, Duration::seconds(200));
    assert_eq!(view["environment"], "not prebuilt: building, ~3 min");
    let text = view["eta"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "usually ready ~3 min after the click (the median of the last 3 launches of this repository on a new VM)"
        ),
        "{text}"
    );
    assert!(page.contains(text), "{page}");
    assert!(page.contains("not prebuilt: building, ~3 min"), "{page}");
    assert!(page.contains("booting a new VM"), "{page}");
}

#[tokio::test]
async fn with_no_past_launch_on_its_path_the_page_gives_no_estimate() {
    // Arrange: REPO launched before, but only cold.
    let app = app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    into_history(&app, "cold", 120).await;

    // Act: REPO from the pool.
    app.launch(REPO, "", "").await;
    set_launch_path(&app, "pool").await;
    let view = app.api_vm_json().await;
    let page = status_page(&app).await;

    // Assert
    assert_eq!(view["eta"], serde_json::Value::Null, "{view:#}");
    assert!(!page.contains("usually ready"), "{page}");
    assert!(!page.contains("~2 min"), "{page}");
}

#[tokio::test]
async fn a_pinned_repository_from_the_pool_is_prebuilt_and_another_is_built() {
    // Arrange
    let app = app().await;
    let bob = app.new_browser();
    app.login_registered("ada").await;
    bob.login_registered("bob").await;

    // Act: ada gets the pinned REPO from the pool, bob another repository
    // from the pool too.
    app.launch(REPO, "", "").await;
    bob.launch(OTHER, "", "").await;
    set_launch_path(&app, "pool").await;
    let pinned = app.api_vm_json().await;
    let pinned_page = status_page(&app).await;
    let other = bob.api_vm_json().await;
    let (_, other_page) = bob.get_page("/VM_status").await;

    // Assert
    assert_eq!(pinned["launch_path"], "pool", "{pinned:#}");
    assert_eq!(pinned["path"], "from the warm pool");
    assert_eq!(pinned["prebuilt"], true);
    assert_eq!(pinned["environment"], "prebuilt: starting Jupyter");
    assert!(pinned_page.contains("from the warm pool"), "{pinned_page}");
    assert!(
        pinned_page.contains("prebuilt: starting Jupyter"),
        "{pinned_page}"
    );
    assert_eq!(other["prebuilt"], false, "{other:#}");
    assert_eq!(other["environment"], "not prebuilt: building");
    assert!(
        other_page.contains("not prebuilt: building"),
        "{other_page}"
    );
}
