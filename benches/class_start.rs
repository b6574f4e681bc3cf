//! A class starts (issue #13): N students log in and register, then all
//! press Launch within 2 s and watch their status pages until their VMs
//! are ready; then they all delete them.
//!
//!     cargo bench --bench class_start               # 1, 30 and 300 students, and 300 under attack
//!     cargo bench --bench class_start -- 300        # only these class sizes
//!     CLASS_SIZES=30,300 cargo bench --bench class_start
//!     CLASS_START_BIN=/path/to/other/stackbinder cargo bench --bench class_start   # another build
//!     cargo bench --bench class_start -- replicas 30   # SQLite, PostgreSQL, two replicas (see replicas.rs)
//!
//! Each class gets a fresh server: the release `stackbinder` binary that
//! cargo builds for benches, run as `stackbinder demo --bind 127.0.0.1:0`
//! (simulated cloud with its default timings, demo login, a temporary
//! database) with a generated configuration, over real HTTP on
//! loopback. Every student is a client of its own (cookies, connections).
//! Onboarding is the demo's: the login form, the registration link, the
//! launch page, each form with the session's CSRF token.
//!
//! Measured per class:
//! - the launch POST: latency p50/p99/max, launches answered (303 to the
//!   status page), lost launches (not answered, or never ready);
//! - while the VMs report: `/api/vm` latency, and the status page's event
//!   stream (`/api/vm/events`) as the time to its first event; each
//!   student holds the stream for 5 s, then asks `/api/vm` and opens it
//!   again (a page holds one stream, reconnecting when a proxy cuts it);
//! - time to ready (from the POST to the first event saying `ready`);
//! - the deletes: POST latency, and every VM `deleted` in the end;
//! - the server's peak RSS (`VmHWM` in `/proc/<pid>/status`), and its
//!   SQLite busy-handler counts from `/metrics`.
//!
//! In the demo the simulated VMs (their launch scripts, their Jupyter
//! stand-ins) run inside the server process, so its RSS holds theirs. The
//! simulator's share is measured apart, first, in this process: the
//! library's `SimulatedCloud` boots as many VMs as the largest class, with
//! the same timings, reporting to a small callback sink here; the growth
//! of this process's RSS from before the first VM to all of them serving
//! is the simulator's. The server's own figure is its peak minus that.
//!
//! The last run repeats the largest class with two hostile clients from
//! other loopback addresses during the launch: one hammering
//! `/register/<wrong secret>` and one forging callbacks (random VM ids and
//! secrets); their answers are counted.

use reqwest::cookie::Jar;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{SimulatedCloud, Timings};
use stackbinder::config::SimulatorConfig;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "class_start/replicas.rs"]
mod replicas;

const REPO: &str = "https://github.com/binder-examples/requirements";
/// Everybody presses Launch within this window.
const LAUNCH_WINDOW: Duration = Duration::from_secs(2);
/// A class that is not settled after this long has lost launches.
const SETTLE_WITHIN: Duration = Duration::from_secs(240);
/// Students onboarding at the same time (onboarding is not measured).
const ONBOARDING_AT_ONCE: usize = 25;
/// How long a student holds the event stream before asking `/api/vm`
/// and opening it again.
const STREAM_FOR: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() {
    let sizes = class_sizes();
    let largest = *sizes.iter().max().expect("at least one class size");
    println!(
        "class start benchmark: {} cores, load average {}, release build\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    if std::env::args().any(|a| a == "replicas") {
        replicas::run(&sizes).await;
        return;
    }
    let simulator_kib = simulator_share(largest).await;
    println!(
        "the simulator alone: {largest} VMs take {} MiB of RSS (measured in this process)\n",
        mib(simulator_kib)
    );
    let mut results = Vec::new();
    for &n in &sizes {
        results.push(run_class(n, false).await);
    }
    results.push(run_class(largest, true).await);
    summary(&results, simulator_kib, largest);
}

/// From the arguments, else `CLASS_SIZES`, else 1, 30 and 300.
fn class_sizes() -> Vec<usize> {
    let from_args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if !from_args.is_empty() {
        return from_args;
    }
    std::env::var("CLASS_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 30, 300])
}

struct ClassResult {
    students: usize,
    attacked: bool,
    launch: Vec<Duration>,
    answered: usize,
    ready: usize,
    time_to_ready: Vec<Duration>,
    api_vm: Vec<Duration>,
    sse: Vec<Duration>,
    delete: Vec<Duration>,
    deleted: usize,
    peak_rss_kib: u64,
    sqlite: BTreeMap<String, f64>,
    attack: Option<String>,
}

async fn run_class(n: usize, attacked: bool) -> ClassResult {
    let label = if attacked { " under attack" } else { "" };
    println!("== {n} students{label}");
    let server = Server::start().await;
    let students: Vec<Arc<Student>> = (0..n)
        .map(|i| Arc::new(Student::new(&server.base, format!("student{i}"))))
        .collect();
    let mut tokens = Vec::with_capacity(n);
    for chunk in students.chunks(ONBOARDING_AT_ONCE) {
        let onboarded = futures_util::future::join_all(
            chunk.iter().map(|s| s.onboard(&server.registration_path)),
        )
        .await;
        tokens.extend(onboarded);
    }

    let attack = attacked.then(|| Attack::start(&server.base));
    let launched = launch_and_watch(&students, tokens.into_iter().map(Some).collect()).await;
    let attack = match attack {
        Some(attack) => Some(attack.stop().await),
        None => None,
    };
    let deletes =
        futures_util::future::join_all(students.iter().map(|s| s.delete_and_wait())).await;
    let peak_rss_kib = server.peak_rss_kib();
    let sqlite = server.sqlite_counts().await;
    server.stop().await;
    let mut result = ClassResult::of(launched, &deletes, peak_rss_kib, sqlite);
    result.attacked = attacked;
    result.attack = attack;
    report(&result);
    result
}

impl ClassResult {
    /// A class's figures from its launches, its deletes (answer latency,
    /// deleted) and the server's; not attacked.
    fn of(
        launched: Launched,
        deletes: &[(Option<Duration>, bool)],
        peak_rss_kib: u64,
        sqlite: BTreeMap<String, f64>,
    ) -> Self {
        let samples = Arc::try_unwrap(launched.samples).unwrap_or_default();
        Self {
            students: launched.launch.len(),
            attacked: false,
            ready: launched.time_to_ready.len(),
            launch: launched.launch,
            answered: launched.answered,
            time_to_ready: launched.time_to_ready,
            api_vm: samples.api_vm.into_inner().expect("samples"),
            sse: samples.sse.into_inner().expect("samples"),
            delete: deletes.iter().filter_map(|d| d.0).collect(),
            deleted: deletes.iter().filter(|d| d.1).count(),
            peak_rss_kib,
            sqlite,
            attack: None,
        }
    }
}

/// What the launches of a class gave.
struct Launched {
    launch: Vec<Duration>,
    answered: usize,
    time_to_ready: Vec<Duration>,
    samples: Arc<Samples>,
}

/// Everybody presses Launch within `LAUNCH_WINDOW` (the launch form with
/// the student's CSRF token, or the REST API for `None`) and watches the
/// VM until it settles.
async fn launch_and_watch(students: &[Arc<Student>], csrfs: Vec<Option<String>>) -> Launched {
    let n = students.len();
    let start = Instant::now();
    let samples = Arc::new(Samples::default());
    let tasks: Vec<_> = students
        .iter()
        .zip(csrfs)
        .enumerate()
        .map(|(i, (student, csrf))| {
            let student = student.clone();
            let samples = samples.clone();
            let at = start + LAUNCH_WINDOW.mul_f64(i as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let sent = Instant::now();
                let answered = match &csrf {
                    Some(csrf) => student.launch(csrf).await,
                    None => student.launch_api().await,
                };
                let took = sent.elapsed();
                let ready_after = if answered {
                    student.watch(sent, &samples).await
                } else {
                    None
                };
                (took, answered, ready_after)
            })
        })
        .collect();
    let mut launched = Launched {
        launch: Vec::new(),
        answered: 0,
        time_to_ready: Vec::new(),
        samples,
    };
    for task in tasks {
        let (took, ok, ready_after) = task.await.expect("a student's task");
        launched.launch.push(took);
        launched.answered += usize::from(ok);
        launched.time_to_ready.extend(ready_after);
    }
    launched
}

fn report(r: &ClassResult) {
    let lost = r.students - r.ready;
    println!(
        "launch POST: p50 {} p99 {} max {}; answered {}/{}",
        ms(pct(&r.launch, 0.5)),
        ms(pct(&r.launch, 0.99)),
        ms(pct(&r.launch, 1.0)),
        r.answered,
        r.students
    );
    println!(
        "VMs ready {}/{}; lost launches {lost}; time to ready p50 {} p99 {}",
        r.ready,
        r.students,
        secs(pct(&r.time_to_ready, 0.5)),
        secs(pct(&r.time_to_ready, 0.99)),
    );
    for (what, samples) in [("/api/vm", &r.api_vm), ("SSE first event", &r.sse)] {
        println!(
            "{what} while the VMs report: p50 {} p99 {} max {} ({} requests)",
            ms(pct(samples, 0.5)),
            ms(pct(samples, 0.99)),
            ms(pct(samples, 1.0)),
            samples.len()
        );
    }
    println!(
        "deletes: POST p50 {} p99 {}; {}/{} VMs deleted",
        ms(pct(&r.delete, 0.5)),
        ms(pct(&r.delete, 0.99)),
        r.deleted,
        r.students
    );
    println!("server peak RSS: {} MiB", mib(r.peak_rss_kib));
    for (name, value) in &r.sqlite {
        println!("{name} {value}");
    }
    if let Some(attack) = &r.attack {
        println!("hostile clients: {attack}");
    }
    println!();
}

fn summary(results: &[ClassResult], simulator_kib: u64, largest: usize) {
    println!(
        "== summary (simulator's share for {largest} VMs: {} MiB)",
        mib(simulator_kib)
    );
    println!(
        "| students | launch p50 | launch p99 | launch max | answered | ready | lost | ready p50 | ready p99 | /api/vm p99 | SSE p99 | deletes | peak RSS | SQLite busy | retries | timeouts |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let counter = |name: &str| r.sqlite.get(name).copied().unwrap_or(0.0);
        println!(
            "| {}{} | {} | {} | {} | {} |",
            r.students,
            if r.attacked { " + attack" } else { "" },
            summary_cells(r).join(" | "),
            counter("stackbinder_sqlite_busy_total"),
            counter("stackbinder_sqlite_busy_retries_total"),
            counter("stackbinder_sqlite_busy_timeouts_total"),
        );
    }
}

/// A class's cells of a summary row, from "launch p50" to "peak RSS".
fn summary_cells(r: &ClassResult) -> [String; 12] {
    [
        ms(pct(&r.launch, 0.5)),
        ms(pct(&r.launch, 0.99)),
        ms(pct(&r.launch, 1.0)),
        r.answered.to_string(),
        r.ready.to_string(),
        (r.students - r.ready).to_string(),
        secs(pct(&r.time_to_ready, 0.5)),
        secs(pct(&r.time_to_ready, 0.99)),
        ms(pct(&r.api_vm, 0.99)),
        ms(pct(&r.sse, 0.99)),
        format!("{}/{}", r.deleted, r.students),
        format!("{} MiB", mib(r.peak_rss_kib)),
    ]
}

/// The latency samples of one class, from every student.
#[derive(Default)]
struct Samples {
    api_vm: Mutex<Vec<Duration>>,
    sse: Mutex<Vec<Duration>>,
}

/// One student's browser: its own cookie jar and connections (or, in the
/// replica runs, a script with an API token).
struct Student {
    base: String,
    login: String,
    client: Client,
    /// Where the VM is looked at: `/api/vm` (the session's), or
    /// `/api/v1/vm` (the token's); its event stream is under it.
    vm_path: &'static str,
}

impl Student {
    fn new(base: &str, login: String) -> Self {
        let client = Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(reqwest::redirect::Policy::none());
        Self::with_client(base, login, client, "/api/vm")
    }

    /// A student of the REST API: every request carries `token`.
    fn with_token(base: &str, login: String, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {token}").parse().expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let client = Client::builder().default_headers(headers);
        Self::with_client(base, login, client, "/api/v1/vm")
    }

    fn with_client(
        base: &str,
        login: String,
        client: reqwest::ClientBuilder,
        vm_path: &'static str,
    ) -> Self {
        let client = client
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a client");
        Self {
            base: base.to_owned(),
            login,
            client,
            vm_path,
        }
    }

    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("a page")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
    }

    /// Log in, register, open the launch page; returns its CSRF token.
    async fn onboard(&self, registration_path: &str) -> String {
        let csrf = csrf_from(&self.page("/login").await);
        let login = [
            ("csrf", csrf.as_str()),
            ("login", &self.login),
            ("next", "/"),
        ];
        let response = self.post("/login/demo", &login).await.expect("login");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "the demo login");
        let csrf = csrf_from(&self.page(registration_path).await);
        let response = self
            .post(registration_path, &[("csrf", &csrf)])
            .await
            .expect("registration");
        let page = response.text().await.expect("a page");
        assert!(page.contains("You are registered"), "registration: {page}");
        let path = format!("/VM_start?giturl={}", urlencode(REPO));
        csrf_from(&self.page(&path).await)
    }

    /// Press Launch: answered when sent to the status page.
    async fn launch(&self, csrf: &str) -> bool {
        let form = [
            ("csrf", csrf),
            ("giturl", REPO),
            ("ref", ""),
            ("urlpath", ""),
        ];
        match self.post("/VM_start", &form).await {
            Ok(r) => r.status() == StatusCode::SEE_OTHER && r.headers()["location"] == "/VM_status",
            Err(_) => false,
        }
    }

    /// Launch through the REST API: answered when accepted.
    async fn launch_api(&self) -> bool {
        self.client
            .post(format!("{}/api/v1/vm", self.base))
            .json(&serde_json::json!({ "repo": REPO }))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::ACCEPTED)
    }

    /// Delete through the REST API and wait until the VM is gone: the
    /// DELETE's latency if it was accepted, and whether the VM ended
    /// `deleted`.
    async fn delete_api_and_wait(&self) -> (Option<Duration>, bool) {
        let sent = Instant::now();
        let response = self
            .client
            .delete(format!("{}/api/v1/vm", self.base))
            .send()
            .await;
        let answered = response
            .is_ok_and(|r| r.status() == StatusCode::ACCEPTED)
            .then(|| sent.elapsed());
        (answered, self.wait_until_deleted(sent).await)
    }

    /// Watch as the status page does, until the VM settles: the event
    /// stream, re-opened every `STREAM_FOR`, and `/api/vm` in between. Returns the time from
    /// `sent` to the first sight of `ready`.
    async fn watch(&self, sent: Instant, samples: &Samples) -> Option<Duration> {
        while sent.elapsed() < SETTLE_WITHIN {
            let (state, seen_at) = self.stream_for(STREAM_FOR, samples).await;
            if state.as_deref() == Some("ready") {
                return Some(seen_at - sent);
            }
            let asked = Instant::now();
            let response = self.get(self.vm_path).await;
            let ok = response.status() == StatusCode::OK;
            let view: Value = response.json().await.unwrap_or(Value::Null);
            if ok {
                samples
                    .api_vm
                    .lock()
                    .expect("samples")
                    .push(asked.elapsed());
            }
            match view["state"].as_str() {
                Some("ready") => return Some(Instant::now() - sent),
                Some("failed" | "deleted") => return None,
                _ => {}
            }
        }
        None
    }

    /// Read the event stream for `window`: the last state it sent, and when.
    async fn stream_for(&self, window: Duration, samples: &Samples) -> (Option<String>, Instant) {
        let opened = Instant::now();
        let mut state = None;
        let mut seen_at = opened;
        let Ok(mut response) = self
            .client
            .get(format!("{}{}/events", self.base, self.vm_path))
            .send()
            .await
        else {
            return (None, seen_at);
        };
        let mut buffer = String::new();
        let mut first = true;
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout_at((opened + window).into(), response.chunk()).await
        {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                    continue;
                };
                if first {
                    samples.sse.lock().expect("samples").push(opened.elapsed());
                    first = false;
                }
                let view: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                state = view["state"].as_str().map(str::to_owned);
                seen_at = Instant::now();
                if matches!(state.as_deref(), Some("ready" | "failed")) {
                    return (state, seen_at);
                }
            }
        }
        (state, seen_at)
    }

    /// Delete the VM and wait until it is gone: the POST's latency if it
    /// was answered, and whether the VM ended `deleted`.
    async fn delete_and_wait(&self) -> (Option<Duration>, bool) {
        let response = self.get("/VM_delete").await;
        if response.status() != StatusCode::OK {
            return (None, false);
        }
        let csrf = csrf_from(&response.text().await.unwrap_or_default());
        let sent = Instant::now();
        let answered = match self.post("/VM_delete", &[("csrf", &csrf)]).await {
            Ok(r) if r.status() == StatusCode::SEE_OTHER => Some(sent.elapsed()),
            _ => None,
        };
        (answered, self.wait_until_deleted(sent).await)
    }

    /// Whether the VM is `deleted` within `SETTLE_WITHIN` of `sent`.
    async fn wait_until_deleted(&self, sent: Instant) -> bool {
        while sent.elapsed() < SETTLE_WITHIN {
            let view: Value = self
                .get(self.vm_path)
                .await
                .json()
                .await
                .unwrap_or(Value::Null);
            if view["state"] == "deleted" {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        false
    }
}

/// The running `stackbinder demo`.
struct Server {
    child: tokio::process::Child,
    base: String,
    registration_path: String,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("config.toml");
        // The defaults of the documented example, as a course would run it.
        std::fs::write(&config, "[server]\nbanner = \"class start benchmark\"\n")
            .expect("the configuration is written");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("a log file");
        let binary = std::env::var_os("CLASS_START_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_stackbinder").into());
        let mut child = tokio::process::Command::new(binary)
            .arg("--config")
            .arg(&config)
            .args(["demo", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "stackbinder=warn")
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the stackbinder binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut base, mut registration) = (None, None);
        while registration.is_none() {
            let Some(line) = lines.next_line().await.expect("the demo's output") else {
                let log = std::fs::read_to_string(dir.path().join("server.log"));
                panic!("the demo ended before it printed its URL: {log:?}");
            };
            if let Some(url) = line.trim().strip_prefix("open:") {
                base = Some(url.trim().trim_end_matches('/').to_owned());
            }
            if let Some(link) = line.trim().strip_prefix("registration link:") {
                registration = Some(link.trim().to_owned());
            }
        }
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = base.expect("the demo printed its URL");
        let registration_path = registration
            .expect("a registration link")
            .strip_prefix(&base)
            .expect("the link is on the demo's URL")
            .to_owned();
        Self {
            child,
            base,
            registration_path,
            _dir: dir,
        }
    }

    fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the server runs");
        proc_status_kib(&format!("/proc/{pid}/status"), "VmHWM:")
    }

    async fn sqlite_counts(&self) -> BTreeMap<String, f64> {
        sqlite_counts(&self.base).await
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The `stackbinder_sqlite_*` counters of the server at `base`'s `/metrics`.
async fn sqlite_counts(base: &str) -> BTreeMap<String, f64> {
    let text = Client::new()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .expect("the metrics");
    text.lines()
        .filter(|l| l.starts_with("stackbinder_sqlite_"))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect()
}

/// Two hostile clients during the launch, each from a loopback address of
/// its own, as another machine would be.
struct Attack {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<BTreeMap<u16, u64>>>,
    started: Instant,
    sent: Arc<AtomicU64>,
}

impl Attack {
    fn start(base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let client = |ip: [u8; 4]| {
            Client::builder()
                .local_address(std::net::IpAddr::from(ip))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a client")
        };
        let guesser = client([127, 0, 0, 2]);
        let forger = client([127, 0, 0, 3]);
        let register = format!("{base}/register/");
        let callback = format!("{base}/api/vm/callback");
        let tasks = vec![
            hammer(stop.clone(), sent.clone(), move || {
                guesser.get(format!("{register}{}", stackbinder::secret::generate()))
            }),
            hammer(stop.clone(), sent.clone(), move || {
                let report = serde_json::json!({
                    "vm": uuid::Uuid::new_v4(), "seq": 1, "phase": "ready", "port": 8888, "log": ["forged"],
                });
                forger
                    .post(&callback)
                    .bearer_auth(stackbinder::secret::generate())
                    .json(&report)
            }),
        ];
        Self {
            stop,
            tasks,
            started: Instant::now(),
            sent,
        }
    }

    /// Stop both; what they were answered, by status.
    async fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let mut answers = Vec::new();
        for (task, name) in self
            .tasks
            .into_iter()
            .zip(["wrong registration", "forged callback"])
        {
            let statuses = task.await.expect("a hostile client");
            answers.push(format!("{name}: {statuses:?}"));
        }
        let rate = self.sent.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64();
        format!(
            "{:.0} requests/s together; answers by status: {}",
            rate,
            answers.join("; ")
        )
    }
}

/// Send requests one after another (4 in flight) until stopped; count
/// the answers by status (0: no answer).
fn hammer(
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    request: impl Fn() -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> tokio::task::JoinHandle<BTreeMap<u16, u64>> {
    let request = Arc::new(request);
    tokio::spawn(async move {
        let lanes = (0..4).map(|_| {
            let (stop, sent, request) = (stop.clone(), sent.clone(), request.clone());
            async move {
                let mut statuses = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let status = request().send().await.map_or(0, |r| r.status().as_u16());
                    *statuses.entry(status).or_insert(0) += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            }
        });
        let mut all = BTreeMap::new();
        for statuses in futures_util::future::join_all(lanes).await {
            for (status, count) in statuses {
                *all.entry(status).or_insert(0) += count;
            }
        }
        all
    })
}

/// The RSS the simulated cloud takes for `n` VMs that boot, report to a
/// callback sink in this process and serve their Jupyter stand-ins.
async fn simulator_share(n: usize) -> u64 {
    let ready = Arc::new(AtomicU64::new(0));
    let sink = {
        let ready = ready.clone();
        axum::Router::new()
            .route(
                "/api/vm/callback",
                axum::routing::post(move |body: axum::Json<Value>| {
                    let ready = ready.clone();
                    async move {
                        if body["phase"] == "ready" {
                            ready.fetch_add(1, Ordering::Relaxed);
                        }
                        axum::Json(serde_json::json!({ "status": "applied" }))
                    }
                }),
            )
            // Every VM gets the same job at once, as one booted for its owner.
            .route(
                "/api/vm/assignment",
                axum::routing::get(|| async {
                    axum::Json(stackbinder::cloud_init::Assignment {
                        login: "student".into(),
                        repo: REPO.into(),
                        git_ref: "HEAD".into(),
                        url_path: String::new(),
                        jupyter_token: stackbinder::secret::generate(),
                        gpu: false,
                        home_volume_id: None,
                        callback_secret: None,
                    })
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let callback_url = format!(
        "http://{}/api/vm/callback",
        listener.local_addr().expect("bound")
    );
    let sink = tokio::spawn(async move { axum::serve(listener, sink).await });
    let cloud = SimulatedCloud::new(Timings::from_config(&SimulatorConfig::default()), 64);
    let before = self_rss_kib();
    let mut servers = Vec::with_capacity(n);
    for i in 0..n {
        let base: url::Url = callback_url.parse().expect("a URL");
        let data = stackbinder::cloud_init::BootData {
            vm_id: stackbinder::domain::VmId::new(),
            callback_url: base.clone(),
            assignment_url: base.join("assignment").expect("a URL"),
            callback_secret: stackbinder::secret::generate(),
            jupyter_port: 8888,
            prebuild: Vec::new(),
        };
        let spec = stackbinder::cloud::ServerSpec {
            name: format!("binder-student{i}"),
            image: "snapshot".into(),
            flavor: "m1.small".into(),
            volume_size_gb: 40,
            delete_volume_on_termination: true,
            key_name: None,
            security_groups: Vec::new(),
            network: None,
            user_data: stackbinder::cloud_init::render_boot_data(&data),
            metadata: BTreeMap::new(),
            home_volume: None,
            availability_zone: None,
        };
        servers.push(
            cloud
                .create_server(&spec)
                .await
                .expect("a simulated server"),
        );
    }
    let deadline = Instant::now() + SETTLE_WITHIN;
    while ready.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = self_rss_kib();
    for id in &servers {
        let _ = cloud.delete_server(id).await;
    }
    sink.abort();
    after.saturating_sub(before)
}

fn self_rss_kib() -> u64 {
    proc_status_kib("/proc/self/status", "VmRSS:")
}

fn proc_status_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The `q` quantile (nearest rank) of `samples`; zero when there are none.
fn pct(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a page with a CSRF field") + marker.len();
    let len = html[start..].find('"').expect("the value ends");
    html[start..start + len].to_owned()
}
