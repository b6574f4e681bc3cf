//! What the proxy costs, against a real jupyter-server (TEST_JUPYTER_PYTHON,
//! see tests/support/real_jupyter.rs): the same requests sent to Jupyter
//! directly and through stackbinder's `/user/<login>/` in one run.
//!
//!     TEST_JUPYTER_PYTHON=/path/to/venv/bin/python cargo bench --bench proxy
//!
//! - latency: sequential `GET /api/status` on keep-alive connections,
//!   direct and proxied interleaved; p50 and p99 of each and the difference;
//! - WebSocket throughput: `kernel_info_request`s pipelined on a kernel's
//!   channels (100 in flight), messages received per second;
//! - idle WebSockets: 1000 held open on `/api/events/subscribe`; the
//!   growth of this process's RSS, direct (the clients alone) and proxied
//!   (the clients, and stackbinder's two sockets and splice per
//!   connection): the difference is the proxy's cost per connection.

#[path = "../tests/support/real_jupyter.rs"]
mod real_jupyter;

use futures_util::{SinkExt, StreamExt};
use real_jupyter::RealJupyter;
use reqwest::cookie::{CookieStore, Jar};
use secrecy::SecretString;
use serde_json::{Value, json};
use stackbinder::app::{Application, Options};
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{Scenario, SimulatedCloud, Timings};
use stackbinder::config::Config;
use std::num::NonZero;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const LOGIN: &str = "bench";
const REQUESTS: usize = 2000;
const WS_MESSAGES: usize = 3000;
const IN_FLIGHT: usize = 100;
const IDLE_SOCKETS: usize = 1000;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One way to Jupyter: its base URL, and what to add to each request.
struct Way {
    name: &'static str,
    base: String,
    headers: Vec<(&'static str, String)>,
}

impl Way {
    fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let mut request = client.get(format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request
    }

    async fn websocket(&self, path: &str) -> Ws {
        let url = format!("{}{path}", self.base).replacen("http://", "ws://", 1);
        let mut request = url.into_client_request().unwrap();
        for (name, value) in &self.headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{}: WebSocket {path}: {e}", self.name))
            .0
    }
}

#[tokio::main]
async fn main() {
    let Some(python) = real_jupyter::python() else {
        return;
    };
    let jupyter = RealJupyter::start(&python, LOGIN).await;
    let (base, cookie, _dir) = stackbinder_with_vm_at(&jupyter).await;
    let auth = format!("token {}", jupyter.token);
    let direct = Way {
        name: "direct",
        base: format!("http://{}/user/{LOGIN}/", jupyter.addr),
        headers: vec![("authorization", auth.clone())],
    };
    let proxied = Way {
        name: "proxied",
        base: format!("{base}/user/{LOGIN}/"),
        headers: vec![("authorization", auth), ("cookie", cookie)],
    };
    println!(
        "proxy benchmark: {} cores, jupyter-server on 127.0.0.1, release build\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    latency(&direct, &proxied).await;
    throughput(&direct, &proxied).await;
    idle_sockets(&direct, &proxied).await;
}

/// stackbinder in-process on the simulated cloud, whose VM reports ready
/// at Jupyter's address; a demo user logged in, registered and launched.
/// Returns the base URL, the session cookie and the database's directory.
async fn stackbinder_with_vm_at(jupyter: &RealJupyter) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secret = stackbinder::secret::generate();
    let mut config = Config::defaults();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("stackbinder.db").display());
    config.registration.secret = Some(SecretString::from(secret.clone()));
    config.registration.secret_file = None;
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    let cloud = SimulatedCloud::new(Timings::quick(), 4);
    cloud.push_scenario(Scenario::ExternalJupyter(jupyter.addr));
    let app = Application::build(
        config,
        Options {
            demo_login: true,
            cloud: Some(Arc::new(cloud) as Arc<dyn Cloud>),
            drive_in_background: true,
            public_url_from_bind: true,
        },
    )
    .await
    .expect("stackbinder starts");
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let jar = Arc::new(Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |path: String| {
        let browser = browser.clone();
        async move {
            browser
                .get(path)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let csrf = |html: &str| {
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("a CSRF field") + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        async move {
            browser
                .post(path)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let token = csrf(&page(format!("{base}/login")).await);
    post(
        format!("{base}/login/demo"),
        vec![
            ("csrf", token),
            ("login", LOGIN.into()),
            ("next", "/".into()),
        ],
    )
    .await;
    let register = format!("{base}/register/{secret}");
    let token = csrf(&page(register.clone()).await);
    assert!(post(register, vec![("csrf", token)]).await.is_success());
    let token = csrf(&page(format!("{base}/VM_start")).await);
    post(format!("{base}/VM_start"), vec![("csrf", token)]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view: Value =
            serde_json::from_str(&page(format!("{base}/api/vm")).await).unwrap_or(Value::Null);
        if view["state"] == "ready" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the VM did not get ready: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = reqwest::Url::parse(&base).unwrap();
    let cookies = jar.cookies(&url).expect("a session cookie");
    (base, cookies.to_str().unwrap().to_owned(), dir)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn latency(direct: &Way, proxied: &Way) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut times = [Vec::with_capacity(REQUESTS), Vec::with_capacity(REQUESTS)];
    for round in 0..REQUESTS + 100 {
        for (i, way) in [direct, proxied].into_iter().enumerate() {
            let start = Instant::now();
            let response = way.get(&client, "api/status").send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{}: {}",
                way.name,
                response.status()
            );
            response.bytes().await.unwrap();
            // The first 100 rounds warm up connections and caches.
            if round >= 100 {
                times[i].push(start.elapsed());
            }
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (d50, d99) = (percentile(&times[0], 0.5), percentile(&times[0], 0.99));
    let (p50, p99) = (percentile(&times[1], 0.5), percentile(&times[1], 0.99));
    println!("latency, GET /api/status, {REQUESTS} each, interleaved:");
    println!("  direct   p50 {:.3} ms  p99 {:.3} ms", ms(d50), ms(d99));
    println!("  proxied  p50 {:.3} ms  p99 {:.3} ms", ms(p50), ms(p99));
    println!(
        "  added    p50 {:+.3} ms  p99 {:+.3} ms  (ratio p50 {:.2}, p99 {:.2})\n",
        ms(p50) - ms(d50),
        ms(p99) - ms(d99),
        ms(p50) / ms(d50),
        ms(p99) / ms(d99)
    );
}

/// A kernel of Jupyter's, started over the REST API with the token.
async fn start_kernel(way: &Way) -> String {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{}api/kernels", way.base))
        .json(&json!({"name": "python3"}));
    for (name, value) in &way.headers {
        request = request.header(*name, value);
    }
    let kernel: Value = request.send().await.unwrap().json().await.unwrap();
    kernel["id"].as_str().expect("a kernel id").to_owned()
}

fn kernel_info_request(session: &str, n: usize) -> Message {
    Message::text(
        json!({
            "header": {"msg_id": format!("{session}-{n}"), "username": "bench", "session": session,
                       "msg_type": "kernel_info_request", "version": "5.3", "date": "2026-01-01T00:00:00Z"},
            "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell", "buffers": [],
        })
        .to_string(),
    )
}

/// Messages received per second while `WS_MESSAGES` requests are answered.
async fn messages_per_second(way: &Way, kernel: &str) -> f64 {
    // A session of its own per connection, as each browser tab has.
    let session = uuid::Uuid::new_v4().to_string();
    let ws = way
        .websocket(&format!(
            "api/kernels/{kernel}/channels?session_id={session}"
        ))
        .await;
    let (mut tx, mut rx) = ws.split();
    let credit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let sender_credit = credit.clone();
    let start = Instant::now();
    let session_for_sender = session.clone();
    let sender = tokio::spawn(async move {
        let session = session_for_sender;
        for n in 0..WS_MESSAGES {
            sender_credit.acquire().await.unwrap().forget();
            tx.send(kernel_info_request(&session, n)).await.unwrap();
        }
        tx
    });
    let (mut replies, mut received) = (0, 0usize);
    while replies < WS_MESSAGES {
        let next = tokio::time::timeout(Duration::from_secs(30), rx.next()).await;
        let message = match next {
            Ok(Some(Ok(message))) => message,
            other => panic!("{}: after {replies} replies: {other:?}", way.name),
        };
        let Message::Text(text) = message else {
            continue;
        };
        received += 1;
        if text.contains("\"kernel_info_reply\"") {
            replies += 1;
            credit.add_permits(1);
        }
    }
    let elapsed = start.elapsed();
    if let Ok(tx) = sender.await
        && let Ok(mut ws) = tx.reunite(rx)
    {
        let _ = ws.close(None).await;
    }
    received as f64 / elapsed.as_secs_f64()
}

async fn throughput(direct: &Way, proxied: &Way) {
    let kernel = start_kernel(direct).await;
    // Warm up the kernel and both paths.
    for way in [direct, proxied] {
        messages_per_second(way, &kernel).await;
    }
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        for (i, way) in [direct, proxied].into_iter().enumerate() {
            rates[i].push(messages_per_second(way, &kernel).await);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, p) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "WebSocket, kernel_info_request x {WS_MESSAGES} pipelined ({IN_FLIGHT} in flight), median of 3:"
    );
    println!("  direct   {d:.0} messages/s");
    println!(
        "  proxied  {p:.0} messages/s  ({:.1} % of direct)\n",
        100.0 * p / d
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Open `IDLE_SOCKETS` WebSockets (50 at a time) and hold them: this
/// process's RSS growth in KiB.
async fn hold_idle(way: &Way) -> (u64, Vec<Ws>) {
    let before = rss_kib();
    let mut sockets = Vec::with_capacity(IDLE_SOCKETS);
    while sockets.len() < IDLE_SOCKETS {
        let batch = (IDLE_SOCKETS - sockets.len()).min(50);
        let opened = futures_util::future::join_all(
            (0..batch).map(|_| way.websocket("api/events/subscribe")),
        )
        .await;
        sockets.extend(opened);
    }
    // Let every splice task settle into its idle wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (rss_kib().saturating_sub(before), sockets)
}

async fn idle_sockets(direct: &Way, proxied: &Way) {
    // A first round of each warms the allocator, so its arenas do not
    // count as growth.
    for way in [direct, proxied] {
        let (_, sockets) = hold_idle(way).await;
        close_all(sockets).await;
    }
    let (direct_kib, sockets) = hold_idle(direct).await;
    close_all(sockets).await;
    let (proxied_kib, sockets) = hold_idle(proxied).await;
    let per = |kib: u64| kib as f64 / IDLE_SOCKETS as f64;
    println!(
        "{IDLE_SOCKETS} idle WebSockets held (/api/events/subscribe), RSS growth of this process:"
    );
    println!(
        "  direct   {direct_kib} KiB ({:.1} KiB per connection: the clients)",
        per(direct_kib)
    );
    println!(
        "  proxied  {proxied_kib} KiB ({:.1} KiB per connection: the clients and the proxy)",
        per(proxied_kib)
    );
    println!(
        "  the proxy: {:.1} KiB per connection",
        per(proxied_kib) - per(direct_kib)
    );
    close_all(sockets).await;
}

async fn close_all(sockets: Vec<Ws>) {
    futures_util::future::join_all(sockets.into_iter().map(|mut ws| async move {
        let _ = ws.close(None).await;
    }))
    .await;
}
