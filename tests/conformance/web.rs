//! The whole application in-process on the dev cloud, used through its web
//! pages like a user would (demo login, registration link, launch, delete).

use crate::dev;
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

pub const REPO: &str = "https://github.com/binder-examples/requirements";

pub struct App {
    pub base: String,
    browser: Client,
    secret: String,
    pub stop: tokio_util::sync::CancellationToken,
    pub dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_owned()
}

impl App {
    /// Start stackbinder (OpenStack backend, demo login) and log `login`
    /// in through the registration link.
    pub async fn spawn(login: &str, configure: impl FnOnce(&mut Config)) -> App {
        let dir = tempfile::tempdir().unwrap();
        let secret = stackbinder::secret::generate();
        let mut config = dev::config(dir.path());
        config.registration.secret = Some(SecretString::from(secret.clone()));
        config.registration.secret_file = None;
        configure(&mut config);
        let cloud: Arc<dyn Cloud> = Arc::new(dev::backend(&config.cloud));
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
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
        let browser = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let app = App {
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
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
