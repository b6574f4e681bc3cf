//! The whole application on a cloud of the test's choosing, used through
//! its web pages like a user would: demo login, registration link, launch,
//! delete. Shared by the test binaries that run stackbinder on something
//! other than the simulated cloud: `tests/openstack` (a fake OpenStack) and
//! `tests/conformance` (a real control plane).

// Each test binary includes this file and uses a different part of it.
#![allow(dead_code)]

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use stackbinder::app::{Application, Login, Options};
use stackbinder::cloud::Cloud;
use stackbinder::config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const REPO: &str = "https://github.com/binder-examples/requirements";

pub struct WebApp {
    pub base: String,
    browser: Client,
    secret: String,
    stop: CancellationToken,
    /// Holds the database, `stackbinder.db`.
    pub dir: tempfile::TempDir,
}

impl Drop for WebApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

impl WebApp {
    /// Start stackbinder with `config` on `cloud` (the database, the address
    /// and the registration secret are set here), then log `login` in
    /// through the demo form and register them with the link.
    pub async fn start(
        mut config: Config,
        cloud: Arc<dyn Cloud>,
        login: &str,
        timeout: Duration,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = stackbinder::secret::generate();
        config.server.bind = "127.0.0.1:0".parse().unwrap();
        config.database.url = format!("sqlite://{}", dir.path().join("stackbinder.db").display());
        config.registration.secret = Some(SecretString::from(secret.clone()));
        config.registration.secret_file = None;
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
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
        let browser = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(timeout)
            .build()
            .unwrap();
        let app = Self {
            base,
            browser,
            secret,
            stop,
            dir,
        };
        app.log_in_and_register(login).await;
        app
    }

    pub async fn get(&self, path: &str) -> String {
        let r = self
            .browser
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> StatusCode {
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

    pub async fn launch(&self) {
        let page = self.get(&format!("/VM_start?giturl={REPO}")).await;
        let csrf = csrf_from(&page);
        let status = self
            .post("/VM_start", &[("csrf", &csrf), ("giturl", REPO)])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    pub async fn delete(&self) {
        let csrf = csrf_from(&self.get("/VM_delete").await);
        assert_eq!(
            self.post("/VM_delete", &[("csrf", &csrf)]).await,
            StatusCode::SEE_OTHER
        );
    }

    /// The owner's view of their VM (`/api/vm`).
    pub async fn view(&self) -> Value {
        let r = self
            .browser
            .get(format!("{}/api/vm", self.base))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    /// How many reconcile passes this app has run whose list of what the
    /// installation owns succeeded (`/metrics`, `operation="list_owned"`,
    /// less the failed ones): a failed pass proves nothing.
    pub async fn reconcile_passes(&self) -> u64 {
        let text = self.get("/metrics").await;
        let sum = |metric: &str| -> u64 {
            text.lines()
                .filter(|l| {
                    l.contains(&format!("{metric}{{")) && l.contains("operation=\"list_owned\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        };
        sum("cloud_request_duration_seconds_count") - sum("cloud_errors_total")
    }

    /// Wait until `more` reconcile passes have run after this call.
    pub async fn wait_for_reconcile_passes(&self, more: u64, limit: Duration) {
        let target = self.reconcile_passes().await + more;
        let deadline = Instant::now() + limit;
        while self.reconcile_passes().await < target {
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {more} reconcile passes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// This app's installation id, read from its database.
    pub async fn installation(&self) -> stackbinder::cloud::InstallationId {
        let url = format!(
            "sqlite://{}",
            self.dir.path().join("stackbinder.db").display()
        );
        let store = stackbinder::store::Store::connect(&url).await.unwrap();
        store.installation_id().await.unwrap()
    }

    /// Poll the view until the VM is in `state`; panic after `limit`.
    pub async fn wait_for(&self, state: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.view().await;
            if v["state"] == state {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {state}; last view {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
