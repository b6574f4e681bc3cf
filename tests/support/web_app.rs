//! The test harness: the real application on 127.0.0.1 with a fresh SQLite
//! file, used over HTTP like a browser would. `TestApp` runs it on the
//! simulated cloud (`tests/api`, through `tests/api/helpers.rs`); `WebApp`
//! on a cloud of the test's choosing, logged in through the demo form and
//! registered: a fake OpenStack (`tests/openstack`) or a real control plane
//! (`tests/conformance`).
//!
//! Set `TEST_LOG=1` to see the application's logs.

// Each test binary includes this file and uses a different part of it.
#![allow(dead_code)]

#[path = "postgres.rs"]
pub mod postgres;
#[path = "replica.rs"]
pub mod replica;

use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use stackbinder::app::{Application, Options};
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{SimulatedCloud, Timings};
use stackbinder::cloud_init::{BootData, LaunchData, parse_boot_data};
use stackbinder::config::{Config, JupyterAccess};
use stackbinder::provision::Provisioner;
use stackbinder::store::AssignmentLookup;
use stackbinder::store::Store;
use std::net::SocketAddr;
use std::num::NonZero;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The repository most tests launch.
pub const REPO: &str = "https://github.com/binder-examples/requirements";

/// How long a test waits for a state before it gives up. The simulated
/// cloud takes well under a second per launch; this is only a safety net.
pub const WAIT: Duration = Duration::from_secs(20);

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        stackbinder::telemetry::init();
    }
});

/// A change to the configuration made when the application starts.
pub type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// How to set up the application and its simulated cloud.
pub struct TestOptions {
    /// Run the provisioner's driver in the background; when false the test
    /// moves VMs forward itself with `TestApp::step`.
    pub drive_in_background: bool,
    pub timings: Timings,
    /// `cloud.floating_ip_pool`
    pub floating_ip_pool: Option<String>,
    /// How many floating IPs the simulated pool holds.
    pub floating_ip_capacity: usize,
    /// `cloud.jupyter_access`: through the proxy (the default), or straight
    /// to each VM (tests of floating IPs, and of the link opened directly).
    pub jupyter_access: JupyterAccess,
    /// Log in with GitHub (as `serve` does) instead of the demo form.
    pub github_login: bool,
    /// Any further change to the configuration.
    pub configure: fn(&mut Config),
    /// A change to the configuration that needs values known only at run
    /// time (the address of a fake GitHub); applied after `configure`.
    pub config: Option<ConfigChange>,
    /// Run on PostgreSQL whatever `TEST_STORE` says (what only several
    /// replicas can show).
    pub on_postgres: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            drive_in_background: true,
            timings: Timings::quick(),
            floating_ip_pool: None,
            floating_ip_capacity: 8,
            jupyter_access: JupyterAccess::Proxy,
            github_login: false,
            configure: |_| {},
            config: None,
            on_postgres: false,
        }
    }
}

/// A running application, its simulated cloud, and a browser for it.
pub struct TestApp {
    pub address: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The browser of the test's main user (cookies on, redirects off).
    pub browser: Browser,
    /// The same cloud the application uses: what it received, and faults.
    pub cloud: SimulatedCloud,
    pub config: Config,
    pub drive_in_background: bool,
    github_login: bool,
    provisioner: Provisioner,
    running: Option<Running>,
    /// The first replica's; another replica of it has none of its own.
    _db_dir: Option<TempDir>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl std::ops::Deref for TestApp {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    LazyLock::force(&TRACING);
    let db_dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::defaults();
    let secret = on_loopback_with_fresh_database(&mut config, db_dir.path());
    if options.on_postgres {
        config.database.url = postgres::database_url_for(db_dir.path());
    }
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud.floating_ip_pool = options.floating_ip_pool.clone();
    config.cloud.jupyter_access = options.jupyter_access;
    if options.github_login {
        config.github.client_id = "stackbinder-test-client".into();
        config.github.client_secret = Some(SecretString::from("stackbinder-test-client-secret"));
    }
    (options.configure)(&mut config);
    if let Some(change) = options.config {
        change(&mut config);
    }
    let cloud = SimulatedCloud::new(options.timings.clone(), options.floating_ip_capacity)
        .with_jupyter_command(config.simulator.jupyter_command.clone());

    let started = Started {
        cloud,
        drive: options.drive_in_background,
        github: options.github_login,
        secret,
        db_dir: Some(db_dir),
    };
    started.run(config, true).await
}

/// What a test application is started with, besides its configuration.
struct Started {
    cloud: SimulatedCloud,
    drive: bool,
    github: bool,
    /// The registration secret its browser registers with.
    secret: String,
    db_dir: Option<TempDir>,
}

impl Started {
    /// Start the application on `config`; with `lead`, wait until it
    /// holds the driver lease.
    async fn run(self, mut config: Config, lead: bool) -> TestApp {
        let cloud: Arc<dyn Cloud> = Arc::new(self.cloud.clone());
        let (address, provisioner, running) = if lead {
            start(config.clone(), cloud, self.drive, self.github).await
        } else {
            start_replica(config.clone(), cloud, self.drive, self.github).await
        };
        // A restart must come back on the same port: the VMs call back to
        // the URL they were given at launch.
        config.server.bind = address;
        let base = format!("http://{address}");
        TestApp {
            address,
            browser: Browser::new(&base, &self.secret),
            base,
            cloud: self.cloud,
            config,
            drive_in_background: self.drive,
            github_login: self.github,
            provisioner,
            running: Some(running),
            _db_dir: self.db_dir,
        }
    }
}

/// Listen on a free port of 127.0.0.1, keep the database in `dir`, and
/// set a new registration secret (returned).
fn on_loopback_with_fresh_database(config: &mut Config, dir: &std::path::Path) -> String {
    let secret = stackbinder::secret::generate();
    config.server.bind = "127.0.0.1:0".parse().expect("a socket address");
    config.database.url = postgres::database_url(dir);
    config.registration.secret = Some(SecretString::from(secret.clone()));
    config.registration.secret_file = None;
    secret
}

async fn start(
    config: Config,
    cloud: Arc<dyn Cloud>,
    drive: bool,
    github: bool,
) -> (SocketAddr, Provisioner, Running) {
    let started = start_replica(config, cloud, drive, github).await;
    // Alone on its database, the application takes the driver lease at
    // once (a stopped predecessor let it go): tests that step the driver
    // themselves start stepping only then.
    tokio::time::timeout(WAIT, started.1.leadership().until_leader())
        .await
        .expect("the application takes the driver lease");
    started
}

/// Start the application; it takes the driver lease if nobody holds it.
async fn start_replica(
    config: Config,
    cloud: Arc<dyn Cloud>,
    drive: bool,
    github: bool,
) -> (SocketAddr, Provisioner, Running) {
    // Rebinding a port that was just closed can fail for a moment.
    let mut attempts = 0;
    let app = loop {
        let options = Options {
            demo_login: !github,
            cloud: Some(cloud.clone()),
            drive_in_background: drive,
            public_url_from_bind: true,
        };
        match Application::build(config.clone(), options).await {
            Ok(app) => break app,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("the application did not start ({e:#}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the application does not start: {e:#}"),
        }
    };
    let address = app.address();
    assert!(
        address.ip().is_loopback(),
        "tests bind only to loopback, not {address}"
    );
    assert_eq!(app.public_url().as_str(), format!("http://{address}/"));
    let provisioner = app.provisioner();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (address, provisioner, Running { stop, task })
}

impl TestApp {
    /// A second browser with its own cookies (another user).
    pub fn new_browser(&self) -> Browser {
        self.browser.new_browser()
    }

    pub fn registration_secret(&self) -> &str {
        &self.browser.registration_secret
    }

    pub fn store(&self) -> &Store {
        self.provisioner.store()
    }

    pub fn provisioner(&self) -> &Provisioner {
        &self.provisioner
    }

    /// Move every unfinished VM forward once (for `drive_in_background: false`).
    pub async fn step(&self) -> usize {
        self.provisioner.step().await.expect("a provisioner step")
    }

    /// Stop the application: the server and its driver end; the database
    /// file and the simulated cloud stay.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let _ = running.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), running.task)
            .await
            .expect("the application stops within 10 s of being asked to")
            .expect("the server task does not panic")
            .expect("the server ends without an error");
    }

    /// A second replica of this application: the same configuration,
    /// database and simulated cloud, on a port of its own. It does not
    /// drive while this one holds the driver lease.
    pub async fn another_replica(&self) -> TestApp {
        let mut config = self.config.clone();
        config.server.bind = "127.0.0.1:0".parse().expect("a socket address");
        let started = Started {
            cloud: self.cloud.clone(),
            drive: self.drive_in_background,
            github: self.github_login,
            secret: self.registration_secret().to_owned(),
            db_dir: None,
        };
        started.run(config, false).await
    }

    /// Stop the application and start a new one on the same address, the
    /// same database file and the same simulated cloud.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (address, provisioner, running) = start(
            self.config.clone(),
            Arc::new(self.cloud.clone()),
            self.drive_in_background,
            self.github_login,
        )
        .await;
        assert_eq!(
            address, self.address,
            "the restarted application listens where the first one did"
        );
        self.provisioner = provisioner;
        self.running = Some(running);
        // Pooled connections went with the old server; the cookies stay.
        self.browser.reconnect();
    }

    /// Poll `/api/vm` of the main browser until the VM is in `state`.
    pub async fn wait_for_state(&self, state: &str) -> Value {
        self.wait_for_state_of(&self.browser, state).await
    }

    /// Poll `/api/vm` as `browser` until its VM is in `state`, stepping the
    /// provisioner if it does not run in the background. Panics at once if
    /// the VM settles in another state, so a failure shows its reason.
    pub async fn wait_for_state_of(&self, browser: &Browser, state: &str) -> Value {
        let step = !self.drive_in_background;
        self.poll(browser, &format!("state {state}"), step, |v| {
            let now = v["state"].as_str().unwrap_or_default();
            if now != state && matches!(now, "ready" | "failed" | "deleted") {
                panic!("waited for the VM to be {state}, but it settled as {now}: {v:#}");
            }
            now == state
        })
        .await
    }

    /// Poll `/api/vm` as `browser` until `done` holds for the view, without
    /// ever stepping the provisioner (only the VM and the driver, if it
    /// runs in the background, move things).
    pub async fn wait_for_view(
        &self,
        browser: &Browser,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        self.poll(browser, what, false, done).await
    }

    async fn poll(
        &self,
        browser: &Browser,
        what: &str,
        step: bool,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last = Value::Null;
        loop {
            if step {
                self.step().await;
            }
            let response = browser.api_vm().await;
            if response.status() == StatusCode::OK {
                last = response.json().await.expect("/api/vm answers JSON");
                if done(&last) {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; last view: {last:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The boot data of the `index`th server the cloud created, as the VM
    /// reads it from its user data (its id, its boot secret...).
    pub fn boot_data(&self, index: usize) -> BootData {
        let created = self.cloud.created();
        let spec = created.get(index).expect("the cloud created that server");
        parse_boot_data(&spec.user_data).expect("the user data carries boot data")
    }

    /// What the `index`th server knows once it has its job: its boot data
    /// and its assignment as the store holds it (the token, the repository...).
    pub async fn launch_data(&self, index: usize) -> LaunchData {
        let boot = self.boot_data(index);
        match self.store().vm_assignment(boot.vm_id).await.unwrap() {
            AssignmentLookup::Assigned(job) => LaunchData::new(&boot, &job),
            other => panic!("the VM has no assignment: {other:?}"),
        }
    }
}

/// A browser: its own cookie jar, never follows redirects.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: Client,
    jar: Arc<Jar>,
    registration_secret: String,
    timeout: Duration,
}

fn browser_client(jar: Arc<Jar>, timeout: Duration) -> Client {
    Client::builder()
        .cookie_provider(jar)
        .redirect(Policy::none())
        .timeout(timeout)
        .build()
        .expect("a reqwest client")
}

impl Browser {
    fn new(base: &str, registration_secret: &str) -> Self {
        Self::with_timeout(base, registration_secret, Duration::from_secs(30))
    }

    fn with_timeout(base: &str, registration_secret: &str, timeout: Duration) -> Self {
        let jar = Arc::new(Jar::default());
        Self {
            base: base.to_owned(),
            client: browser_client(jar.clone(), timeout),
            jar,
            registration_secret: registration_secret.to_owned(),
            timeout,
        }
    }

    /// Another browser with its own cookies (another user).
    pub fn new_browser(&self) -> Self {
        Self::with_timeout(&self.base, &self.registration_secret, self.timeout)
    }

    fn reconnect(&mut self) {
        self.client = browser_client(self.jar.clone(), self.timeout);
    }

    /// The `name=value` of the session cookie the browser holds, if any.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&self.base).expect("the base URL parses");
        let cookies = self.jar.cookies(&url)?;
        let cookies = cookies.to_str().expect("ASCII cookies");
        cookies
            .split("; ")
            .find(|c| c.starts_with(&format!("{}=", stackbinder::web::SESSION_COOKIE)))
            .map(str::to_owned)
    }

    /// The `Cookie` header this browser would send to `path` (all its
    /// cookies there, ours and Jupyter's), for clients that are not
    /// reqwest (a WebSocket).
    pub fn cookie_header(&self, path: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = reqwest::Url::parse(&self.url(path)).expect("the URL parses");
        let cookies = self.jar.cookies(&url)?;
        Some(cookies.to_str().expect("ASCII cookies").to_owned())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET an absolute URL (a redirect's target) with this browser's cookies.
    // No test follows a redirect by hand at the moment; kept for those that will.
    #[allow(dead_code)]
    pub async fn get_url(&self, url: &str) -> Response {
        self.client
            .get(url)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent")
    }

    /// GET a page and return its status and body.
    pub async fn get_page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("a body"))
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("the request is sent")
    }

    /// A CSRF token of this browser's session, from a page that has one.
    pub async fn csrf(&self) -> String {
        for path in ["/", "/login"] {
            let (_, body) = self.get_page(path).await;
            if body.contains("name=\"csrf\"") {
                return csrf_from(&body);
            }
        }
        panic!("no page offers a CSRF token");
    }

    /// Log in with the demo form.
    pub async fn login(&self, name: &str) {
        let (status, page) = self.get_page("/login").await;
        assert_eq!(status, StatusCode::OK, "the login page: {page}");
        let csrf = csrf_from(&page);
        let response = self
            .post_form(
                "/login/demo",
                &[("csrf", &csrf), ("login", name), ("next", "/")],
            )
            .await;
        assert_is_redirect_to(&response, "/");
    }

    pub fn registration_path(&self) -> String {
        format!("/register/{}", self.registration_secret)
    }

    /// Open the registration link and press the button.
    pub async fn register(&self) -> Response {
        let path = self.registration_path();
        let (status, page) = self.get_page(&path).await;
        assert_eq!(status, StatusCode::OK, "the registration page: {page}");
        let csrf = csrf_from(&page);
        self.post_form(&path, &[("csrf", &csrf)]).await
    }

    pub async fn login_registered(&self, name: &str) {
        self.login(name).await;
        let response = self.register().await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        assert!(page.contains("You are registered"), "{page}");
    }

    /// GET the confirmation page of a launch.
    pub async fn confirm_page(&self, giturl: &str, git_ref: &str, urlpath: &str) -> Response {
        self.client
            .get(self.url("/VM_start"))
            .query(&[("giturl", giturl), ("ref", git_ref), ("urlpath", urlpath)])
            .send()
            .await
            .expect("the request is sent")
    }

    /// Launch as a person would: open the confirmation page, press Launch.
    pub async fn launch(&self, giturl: &str, git_ref: &str, urlpath: &str) -> Response {
        let page = self.confirm_page(giturl, git_ref, urlpath).await;
        assert_eq!(
            page.status(),
            StatusCode::OK,
            "the confirmation page of a valid launch"
        );
        let csrf = csrf_from(&page.text().await.unwrap());
        self.post_form(
            "/VM_start",
            &[
                ("csrf", &csrf),
                ("giturl", giturl),
                ("ref", git_ref),
                ("urlpath", urlpath),
            ],
        )
        .await
    }

    pub async fn api_vm(&self) -> Response {
        self.get("/api/vm").await
    }

    /// `/api/vm`, which must answer 200.
    pub async fn api_vm_json(&self) -> Value {
        let response = self.api_vm().await;
        assert_eq!(response.status(), StatusCode::OK, "/api/vm");
        response.json().await.expect("/api/vm answers JSON")
    }

    /// Open the deletion page and confirm.
    pub async fn delete_vm(&self) -> Response {
        let (status, page) = self.get_page("/VM_delete").await;
        assert_eq!(status, StatusCode::OK, "the deletion page: {page}");
        let csrf = csrf_from(&page);
        self.post_form("/VM_delete", &[("csrf", &csrf)]).await
    }
}

/// The value of the first `<input type="hidden" name="csrf" value="...">`.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field in the page:\n{html}"))
        + marker.len();
    let len = html[start..].find('"').expect("the value ends");
    let token = &html[start..start + len];
    assert!(
        token.len() >= 32,
        "a CSRF token is long and random, not {token:?}"
    );
    token.to_owned()
}

#[track_caller]
pub fn assert_is_redirect_to(response: &Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location} from {}",
        response.url()
    );
    assert_eq!(response.headers()["location"], location);
}

/// The `Location` of a redirect.
#[track_caller]
pub fn location(response: &Response) -> String {
    assert!(
        response.status().is_redirection(),
        "not a redirect: {}",
        response.status()
    );
    response.headers()["location"]
        .to_str()
        .expect("an ASCII location")
        .to_owned()
}

/// Undo askama's HTML escaping, to look for text in a page.
pub fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity_end = rest.find(';').filter(|&e| e <= 8);
        let decoded = entity_end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A client without cookies, as another program would be.
pub fn plain_client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client")
}

/// POST a progress report to the callback endpoint, as a VM does.
pub async fn post_callback(
    app: &TestApp,
    bearer: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut request = plain_client()
        .post(app.browser.url("/api/vm/callback"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(secret) = bearer {
        request = request.bearer_auth(secret);
    }
    request.send().await.expect("the request is sent")
}

/// The strings of a JSON array of strings.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The application on any cloud, with its driver in the background, and
/// the browser of one user who is logged in and registered. Dropping it
/// stops the application.
pub struct WebApp {
    pub base: String,
    /// The logged-in user's browser.
    pub browser: Browser,
    provisioner: Provisioner,
    _running: Running,
    /// Holds the database, `stackbinder.db`.
    pub dir: tempfile::TempDir,
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
        LazyLock::force(&TRACING);
        let dir = tempfile::tempdir().unwrap();
        let secret = on_loopback_with_fresh_database(&mut config, dir.path());
        let (address, provisioner, running) = start(config, cloud, true, false).await;
        let base = format!("http://{address}");
        let app = Self {
            browser: Browser::with_timeout(&base, &secret, timeout),
            base,
            provisioner,
            _running: running,
            dir,
        };
        app.browser.login_registered(login).await;
        app
    }

    /// What the VM booted with `user_data` knows once it has its job: its
    /// boot data and its assignment as the store holds it.
    pub async fn launch_data_of(&self, user_data: &str) -> LaunchData {
        let boot = parse_boot_data(user_data).expect("the user data carries boot data");
        match self
            .provisioner
            .store()
            .vm_assignment(boot.vm_id)
            .await
            .unwrap()
        {
            AssignmentLookup::Assigned(job) => LaunchData::new(&boot, &job),
            other => panic!("the VM has no assignment: {other:?}"),
        }
    }

    /// The browser of another user, logged in and registered.
    pub async fn another_user(&self, login: &str) -> Browser {
        let browser = self.browser.new_browser();
        browser.login_registered(login).await;
        browser
    }

    pub fn provisioner(&self) -> &Provisioner {
        &self.provisioner
    }

    /// The body of a page.
    pub async fn get(&self, path: &str) -> String {
        self.browser.get_page(path).await.1
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> StatusCode {
        self.browser.post_form(path, form).await.status()
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
        let r = self.browser.api_vm().await;
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
        let url = postgres::database_url(self.dir.path());
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

/// `stackbinder serve` (the real binary) as the black-box tests start it:
/// on a free port of 127.0.0.1, with GitHub settings (it needs them to
/// start), no configuration file and no OpenStack from the environment,
/// its log on a pipe (stderr); the test adds the database and the rest.
pub fn serve_command(env: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"));
    command
        .arg("serve")
        .env_remove("STACKBINDER_CONFIG")
        .env_remove("STACKBINDER_CLOUD__BACKEND")
        .env("RUST_LOG", "stackbinder=info")
        .env("STACKBINDER_SERVER__BIND", "127.0.0.1:0")
        .env("STACKBINDER_GITHUB__CLIENT_ID", "serve-test")
        .env("STACKBINDER_GITHUB__CLIENT_SECRET", "serve-test-secret")
        // Whatever OpenStack the environment names is not this test's.
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command.envs(env.iter().copied());
    command
}
