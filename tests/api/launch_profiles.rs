//! Launch profiles through `POST /api/v1/vm`: `profile` picks one the
//! caller may use, and the cloud is asked for its flavor and volume size.

use crate::api_v1_tokens::make_token;
use crate::helpers::{TestApp, TestOptions, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::config::Config;
use std::time::{Duration, Instant};

const REPO: &str = "https://github.com/org/repo";

/// `standard` (the default) and `big` for everyone; `gpu` for the users
/// of another registration link than the test's.
fn with_profiles(config: &mut Config) {
    config.profiles = serde_json::from_value(json!([
        {"name": "standard", "description": "for all", "flavor": "m1.large",
         "volume_size_gb": 100},
        {"name": "big", "description": "a big disk", "flavor": "m1.xlarge",
         "volume_size_gb": 300},
        {"name": "gpu", "description": "one GPU", "flavor": "g1.gpu",
         "volume_size_gb": 100, "image": "gpu-snapshot", "gpu": true,
         "links": ["GPU course"]},
    ]))
    .expect("valid profiles");
}

async fn app_and_token() -> (TestApp, String) {
    let app = spawn_app_with(TestOptions {
        configure: with_profiles,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("alice").await;
    let token = make_token(&app.browser, "script", &["vm_launch", "vm_read"]).await;
    (app, token)
}

async fn post_launch(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/vm"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The one server spec the cloud received, once it has.
async fn created(app: &TestApp) -> stackbinder::cloud::ServerSpec {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let [spec] = &app.cloud.created()[..] {
            return spec.clone();
        }
        assert!(Instant::now() < deadline, "no server was asked for");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_api_launches_the_profile_it_names() {
    let (app, token) = app_and_token().await;

    let (status, vm) = post_launch(&app, &token, json!({"repo": REPO, "profile": "big"})).await;

    assert_eq!(status, StatusCode::ACCEPTED, "{vm}");
    let spec = created(&app).await;
    assert_eq!(
        (spec.flavor.as_str(), spec.volume_size_gb),
        ("m1.xlarge", 300)
    );
    let id: stackbinder::domain::VmId = vm["id"].as_str().unwrap().parse().unwrap();
    let record = app.store().vm(id).await.unwrap().unwrap();
    assert_eq!(record.profile.unwrap().as_str(), "big");
}

#[tokio::test]
async fn the_api_gives_the_first_profile_without_one() {
    let (app, token) = app_and_token().await;

    let (status, _) = post_launch(&app, &token, json!({"repo": REPO})).await;

    assert_eq!(status, StatusCode::ACCEPTED);
    let spec = created(&app).await;
    assert_eq!(
        (spec.flavor.as_str(), spec.volume_size_gb),
        ("m1.large", 100)
    );
}

#[tokio::test]
async fn the_api_refuses_a_profile_the_caller_may_not_use() {
    let (app, token) = app_and_token().await;

    for (profile, says) in [
        ("gpu", "\"gpu\" is not open to you"),
        ("GPU!", "not a profile name"),
    ] {
        let (status, body) =
            post_launch(&app, &token, json!({"repo": REPO, "profile": profile})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}");
    }
    assert!(app.store().live_vms().await.unwrap().is_empty(), "no VM");
}

/// A profile open to a GitHub team, for users let in by organization
/// membership: GitHub is asked about the team, and only its members get it.
#[tokio::test]
async fn a_profile_for_a_team_is_offered_to_its_members_only() {
    use crate::fake_github::{FakeGithub, github_login, spawn_with_github};
    let fake = FakeGithub::start().await;
    let app = spawn_with_github(&fake, |config| {
        config.registration.allowed_orgs =
            serde_json::from_value(json!(["physics-lab"])).expect("an org");
        config.profiles = serde_json::from_value(json!([
            {"name": "standard", "description": "for all", "flavor": "m1.large",
             "volume_size_gb": 100},
            {"name": "gpu", "description": "one GPU", "flavor": "g1.gpu",
             "volume_size_gb": 100, "image": "gpu-snapshot", "gpu": true,
             "orgs": ["physics-lab/gpu"]},
        ]))
        .expect("valid profiles");
    })
    .await;
    fake.set_org_membership("physics-lab", "ada", "active");
    fake.set_org_membership("physics-lab", "bob", "active");
    fake.add_team_member("physics-lab", "gpu", "ada");
    let page_of = |browser: &crate::helpers::Browser| {
        let browser = browser.clone();
        async move {
            browser
                .get_page(&format!("/VM_start?giturl={REPO}&profile=gpu"))
                .await
        }
    };

    let ada = app.new_browser();
    github_login(&ada, &fake, "ada").await;
    let bob = app.new_browser();
    github_login(&bob, &fake, "bob").await;

    let (status, page) = page_of(&ada).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("value=\"gpu\" checked"), "{page}");
    let (status, page) = page_of(&bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("is not open to you"), "{page}");
    assert!(
        !fake
            .requests_to("/orgs/physics-lab/teams/gpu/memberships/bob")
            .is_empty(),
        "GitHub was asked about bob"
    );
}

#[tokio::test]
async fn with_every_vm_slot_taken_the_page_says_a_launch_waits() {
    let app = spawn_app_with(TestOptions {
        configure: |config| {
            with_profiles(config);
            config.cloud.max_vms = Some(1);
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("alice").await;
    let (_, page) = app.get_page(&format!("/VM_start?giturl={REPO}")).await;
    assert!(page.contains("1 of this size still fits"), "{page}");
    app.launch(REPO, "HEAD", "").await;

    let bob = app.new_browser();
    bob.login_registered("bob").await;
    let (_, page) = bob.get_page(&format!("/VM_start?giturl={REPO}")).await;

    assert!(
        page.contains("none fits now: all VM slots are taken, a launch waits in the queue"),
        "{page}"
    );
}
