//! The whole application with the OpenStack backend pointed at the fake:
//! log in, register, launch, ready, delete; and failures the user reads.
//! A fake Nova boots nothing, so the test plays the VM: it reads the launch
//! data from the user data Nova received, serves a Jupyter stand-in on
//! 127.0.0.1 and posts the `ready` callback the launch script would.

use crate::fake_openstack::FakeOpenStack;
use crate::helpers::*;
use axum::http::Method;
use reqwest::Client;
use serde_json::{Value, json};
use stackbinder::cloud::Cloud;
use stackbinder::config::Config;
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

#[path = "../support/web_app.rs"]
pub(crate) mod web_app;

use web_app::{REPO, WebApp};

/// The application on the fake OpenStack, and the fake to look at.
struct App {
    web: WebApp,
    fake: FakeOpenStack,
}

impl std::ops::Deref for App {
    type Target = WebApp;
    fn deref(&self) -> &WebApp {
        &self.web
    }
}

impl App {
    async fn wait_for(&self, state: &str) -> Value {
        self.web.wait_for(state, Duration::from_secs(20)).await
    }
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.server_address = "127.0.0.1".into();
        w.pool_free = vec!["127.0.0.1".into()];
        w.boot_polls = 2;
    }
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud = env.config.clone();
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = WebApp::start(config, cloud, "alice", Duration::from_secs(10)).await;
    let app = App {
        web,
        fake: env.fake.clone(),
    };
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    app
}

#[tokio::test]
async fn launch_to_ready_and_delete_through_the_web_leaves_nothing_in_openstack() {
    // Arrange
    let app = spawn(|_| {}).await;

    // Act: launch, and play the VM once Nova has the user data.
    app.launch().await;
    let creating = app.wait_for("building").await;
    assert!(creating["error"].is_null(), "{creating:#}");
    let data = app.web.launch_data_of(&app.fake.user_data(0)).await;
    assert_eq!(data.repo, REPO);
    assert_eq!(data.vm_id.to_string(), creating["id"].as_str().unwrap());
    let (port, _) = jupyter_stand_in("alice").await;
    let report = json!({"vm": data.vm_id, "seq": 1, "phase": "ready", "port": port,
        "log": ["Jupyter Server 2.14.0 is running"]});
    let status = Client::new()
        .post(data.callback_url.as_str())
        .bearer_auth(&data.callback_secret)
        .json(&report)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let ready = app.wait_for("ready").await;
    let launch_calls = app.fake.count_by_service(0);

    // Assert: the link points at the floating IP and Jupyter's port.
    let link = ready["jupyter_url"].as_str().expect("a Jupyter link");
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{port}/user/alice/")),
        "{link}"
    );
    assert_eq!(app.fake.fips().len(), 1);
    assert!(
        app.fake.fips()[0].port_id.is_some(),
        "the floating IP is attached"
    );

    // Act: delete.
    let before = app.fake.calls().len();
    app.delete().await;
    app.wait_for("deleted").await;
    let delete_calls = app.fake.count_by_service(before);

    // Assert: nothing left, and what it took.
    assert_eq!(app.fake.server_count(), 0, "no server left");
    assert_eq!(app.fake.volume_count(), 0, "no volume left");
    assert!(app.fake.fips().is_empty(), "the floating IP was released");
    assert_eq!(app.fake.find_calls(Method::DELETE, "floatingips/").len(), 1);
    eprintln!("calls for a launch: {launch_calls:?}; for a delete: {delete_calls:?}");
    assert_eq!(launch_calls["identity"], 2, "one token, one project lookup");
    assert!(
        !delete_calls.contains_key("identity"),
        "no new token to delete"
    );
}

#[tokio::test]
async fn a_kept_floating_ip_stays_with_the_project_when_release_is_off() {
    let app = spawn(|c| c.cloud.release_floating_ip = false).await;
    app.launch().await;
    app.wait_for("building").await;
    app.delete().await;
    app.wait_for("deleted").await;
    assert_eq!(app.fake.server_count(), 0);
    assert_eq!(app.fake.volume_count(), 0);
    let fips = app.fake.fips();
    assert_eq!(fips.len(), 1, "kept for the next VM");
    assert!(fips[0].port_id.is_none(), "but attached to nothing");
}

#[tokio::test]
async fn a_server_in_error_shows_novas_fault_to_the_user() {
    let app = spawn(|_| {}).await;
    app.fake.world().boot_fault =
        Some("No valid host was found. There are not enough hosts available.".into());
    app.launch().await;
    let failed = app.wait_for("failed").await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("No valid host was found. There are not enough hosts available."),
        "{failed:#}"
    );
}

#[tokio::test]
async fn a_full_project_fails_the_launch_with_the_quota_in_words() {
    let app = spawn(|_| {}).await;
    app.fake.world().extra_instances = 20;
    app.launch().await;
    let failed = app.wait_for("failed").await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("quota exceeded: this project uses 20 of 20 instances"),
        "{failed:#}"
    );
    assert_eq!(app.fake.server_count(), 0);
}

#[tokio::test]
async fn an_exhausted_pool_leaves_a_working_vm_and_a_warning() {
    let app = spawn(|_| {}).await;
    app.fake.world().pool_free.clear();
    app.launch().await;
    let building = app.wait_for("building").await;
    let log = building.to_string();
    assert!(
        log.contains("the cloud is out of floating IPs"),
        "{building:#}"
    );
    app.delete().await;
    app.wait_for("deleted").await;
    assert_eq!(app.fake.server_count() + app.fake.volume_count(), 0);
}
