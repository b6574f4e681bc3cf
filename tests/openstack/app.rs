//! The whole application with the OpenStack backend pointed at the fake:
//! log in, register, launch, ready, delete; and failures the user reads.
//! A fake Nova boots nothing, so the test plays the VM: it reads the launch
//! data from the user data Nova received, serves a Jupyter stand-in on
//! 127.0.0.1 and posts the `ready` callback the launch script would.

use crate::fake_openstack::FakeOpenStack;
use crate::helpers::*;
use axum::http::Method;
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use stackbinder::app::{Application, Login, Options};
use stackbinder::cloud::Cloud;
use stackbinder::cloud_init::parse_launch_data;
use stackbinder::config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const REPO: &str = "https://github.com/binder-examples/requirements";

struct App {
    base: String,
    browser: Client,
    secret: String,
    fake: FakeOpenStack,
    _dirs: Vec<tempfile::TempDir>,
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.server_address = "127.0.0.1".into();
        w.pool_free = vec!["127.0.0.1".into()];
        w.boot_polls = 2;
    }
    let db = tempfile::tempdir().unwrap();
    let secret = stackbinder::secret::generate();
    let mut config = Config::defaults();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.database.url = format!("sqlite://{}", db.path().join("db.sqlite").display());
    config.registration.secret = Some(SecretString::from(secret.clone()));
    config.registration.secret_file = None;
    config.provision.poll_interval_ms = 50;
    config.cloud = env.config.clone();
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let app = Application::build(
        config,
        Options {
            login: Login::Demo,
            cloud: Some(cloud),
            drive_in_background: true,
            public_url_from_bind: true,
        },
    )
    .await
    .expect("the application starts");
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let app = App {
        base,
        browser,
        secret,
        fake: env.fake.clone(),
        _dirs: vec![db],
    };
    app.log_in_and_register("alice").await;
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    app
}

fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

impl App {
    async fn get(&self, path: &str) -> String {
        let r = self
            .browser
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> StatusCode {
        let r = self
            .browser
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        r.status()
    }

    async fn log_in_and_register(&self, name: &str) {
        let csrf = csrf_from(&self.get("/login").await);
        self.post(
            "/login/demo",
            &[("csrf", &csrf), ("login", name), ("next", "/")],
        )
        .await;
        let path = format!("/register/{}", self.secret);
        let csrf = csrf_from(&self.get(&path).await);
        assert_eq!(self.post(&path, &[("csrf", &csrf)]).await, StatusCode::OK);
    }

    async fn launch(&self) {
        let page = self.get(&format!("/VM_start?giturl={REPO}")).await;
        let csrf = csrf_from(&page);
        let status = self
            .post("/VM_start", &[("csrf", &csrf), ("giturl", REPO)])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    async fn delete(&self) {
        let csrf = csrf_from(&self.get("/VM_delete").await);
        assert_eq!(
            self.post("/VM_delete", &[("csrf", &csrf)]).await,
            StatusCode::SEE_OTHER
        );
    }

    async fn view(&self) -> Value {
        let r = self
            .browser
            .get(format!("{}/api/vm", self.base))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    async fn wait_for(&self, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.view().await;
            if v["state"] == state {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {state}; last view {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

/// A Jupyter stand-in on 127.0.0.1: `/api` answers 200.
async fn jupyter() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/api",
        axum::routing::get(|| async { "{\"version\": \"2.14.0\"}" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn launch_to_ready_and_delete_through_the_web_leaves_nothing_in_openstack() {
    // Arrange
    let app = spawn(|_| {}).await;

    // Act: launch, and play the VM once Nova has the user data.
    app.launch().await;
    let creating = app.wait_for("building").await;
    assert!(creating["error"].is_null(), "{creating:#}");
    let data = parse_launch_data(&app.fake.user_data(0)).expect("launch data in the user data");
    assert_eq!(data.repo, REPO);
    assert_eq!(data.vm_id.to_string(), creating["id"].as_str().unwrap());
    let port = jupyter().await;
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
        link.starts_with(&format!("http://127.0.0.1:{port}/")),
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
