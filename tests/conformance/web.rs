//! The whole application in-process on the dev cloud, used through its web
//! pages like a user would (demo login, registration link, launch, delete).

use crate::dev;
use stackbinder::cloud::Cloud;
use stackbinder::config::Config;
use std::sync::Arc;
use std::time::Duration;

#[path = "../support/web_app.rs"]
pub(crate) mod web_app;

pub use web_app::{REPO, WebApp as App, csrf_from};

impl App {
    /// Start stackbinder (OpenStack backend on the dev cloud, demo login)
    /// and log `login` in through the registration link.
    pub async fn spawn(login: &str, configure: impl FnOnce(&mut Config)) -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut config = dev::config(dir.path());
        configure(&mut config);
        let cloud: Arc<dyn Cloud> = Arc::new(dev::backend(&config.cloud));
        App::start(config, cloud, login, Duration::from_secs(30)).await
    }
}
