//! A simulated VM: what `cloud-init/launch.sh` does on a real one, acted out
//! in-process. It reports its progress to stackbinder's callback endpoint
//! with the per-VM secret, and then serves a small Jupyter stand-in under
//! `/user/<login>/` that checks the token and answers WebSockets, so the
//! demo's Jupyter link really opens something; or it runs a real JupyterLab
//! (`simulator.jupyter_command`, see `real_jupyter`).

use super::Timings;
use super::real_jupyter;
use crate::cloud_init::{CallbackReport, LaunchData};
use crate::domain::Progress;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub enum VmScript {
    /// Serves the stand-in.
    Succeeds,
    /// Runs this real JupyterLab command (`simulator.jupyter_command`).
    RealJupyter(Vec<String>),
    BuildFails(Vec<String>),
    /// Says `ready` but serves nothing (a crashed container, a firewall).
    JupyterNeverAnswers,
    /// Says `ready` with this port, where someone else's Jupyter listens.
    ExternalJupyter(u16),
}

struct JupyterInfo {
    repo: String,
    git_ref: String,
    token: String,
    port: u16,
    /// `/user/<login>/`, as `--ServerApp.base_url` on a real VM.
    base_path: String,
    /// The value of the cookie a valid token earns, as Jupyter's login
    /// cookie: the browser presents the token once.
    session: String,
    started: chrono::DateTime<chrono::Utc>,
    /// Moved forward by every page the owner opens and every WebSocket
    /// message, as in Jupyter.
    last_activity: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
}

/// The name of the stand-in's login cookie (scoped to its base path).
const SESSION_COOKIE: &str = "simulated-jupyter";

/// The Jupyter stand-in: under `/user/<login>/` like the real one started
/// by `launch.sh`, `/api` like Jupyter Server, a WebSocket echo on the
/// kernel channels path, every other page needs the token (or the cookie
/// it earns).
#[derive(Clone)]
pub struct Jupyter {
    info: Arc<JupyterInfo>,
}

impl Jupyter {
    pub fn new(data: &LaunchData) -> Self {
        Self {
            info: Arc::new(JupyterInfo {
                repo: data.repo.clone(),
                git_ref: data.git_ref.clone(),
                token: data.jupyter_token.clone(),
                port: data.jupyter_port,
                base_path: crate::provision::jupyter::base_path(&data.login),
                session: crate::secret::generate(),
                started: chrono::Utc::now(),
                last_activity: std::sync::Mutex::new(chrono::Utc::now()),
            }),
        }
    }

    /// Pretend the last activity was at `at` (idle-culling drills).
    pub fn set_last_activity(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.info.last_activity.lock().expect("activity lock") = at;
    }

    fn router(&self) -> Router {
        // A login is letters, digits and hyphens: nothing a route pattern
        // would read as a parameter.
        let base = &self.info.base_path;
        Router::new()
            .route(&format!("{base}api"), get(api_version))
            .route(&format!("{base}api/status"), get(api_status))
            .route(
                &format!("{base}api/kernels/{{kernel}}/channels"),
                get(kernel_channels),
            )
            .route(&format!("{base}static/simulated.js"), get(page_script))
            .fallback(get(page))
            .with_state(self.info.clone())
    }

    /// Listen on `ip` at the Jupyter port, or any port if that one is taken.
    pub(super) async fn bind(&self, ip: Ipv4Addr) -> Option<tokio::net::TcpListener> {
        for addr in [
            SocketAddr::from((ip, self.info.port)),
            SocketAddr::from((ip, 0)),
        ] {
            if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
                return Some(listener);
            }
        }
        None
    }

    /// Serve on a further address (a floating IP) until aborted.
    pub async fn serve_on(self, ip: Ipv4Addr) {
        if let Some(listener) = self.bind(ip).await {
            let _ = axum::serve(listener, self.router()).await;
        }
    }
}

fn touch(info: &JupyterInfo) {
    *info.last_activity.lock().expect("activity lock") = chrono::Utc::now();
}

async fn api_version() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "version": "2.14.0 (stackbinder simulator)" }))
}

/// The token from the query or an `Authorization: token` header, or the
/// cookie an earlier token earned.
fn token_ok(
    info: &JupyterInfo,
    query: &HashMap<String, String>,
    headers: &axum::http::HeaderMap,
) -> bool {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("token "));
    let presented = query.get("token").map(String::as_str).or(from_header);
    if presented.is_some_and(|t| crate::secret::equal(t.as_bytes(), info.token.as_bytes())) {
        return true;
    }
    session_cookie(headers)
        .is_some_and(|s| crate::secret::equal(s.as_bytes(), info.session.as_bytes()))
}

fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

async fn api_status(
    State(info): State<Arc<JupyterInfo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !token_ok(&info, &query, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    axum::Json(serde_json::json!({
        "started": info.started,
        "last_activity": *info.last_activity.lock().expect("activity lock"),
        "connections": 0,
        "kernels": 0,
    }))
    .into_response()
}

/// A kernel's channels, as far as a stand-in can: every message comes
/// back as it was sent, so a WebSocket through the proxy can be seen to
/// work both ways.
async fn kernel_channels(
    State(info): State<Arc<JupyterInfo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !token_ok(&info, &query, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    upgrade.on_upgrade(move |socket| echo(socket, info))
}

async fn echo(mut socket: WebSocket, info: Arc<JupyterInfo>) {
    while let Some(Ok(message)) = socket.recv().await {
        touch(&info);
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            // axum answers pings itself.
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// The page's script: a WebSocket to the kernel channels, whose echo the
/// page shows (the browser journey looks for it).
async fn page_script(State(info): State<Arc<JupyterInfo>>) -> Response {
    let base = serde_json::to_string(&info.base_path).expect("a string serializes");
    let script = format!(
        "\"use strict\";\n\
         const base = {base};\n\
         const out = document.getElementById(\"echo\");\n\
         const scheme = location.protocol === \"https:\" ? \"wss://\" : \"ws://\";\n\
         const ws = new WebSocket(scheme + location.host + base + \"api/kernels/simulated/channels\");\n\
         ws.onopen = () => ws.send(\"1+1\");\n\
         ws.onmessage = (e) => {{ out.textContent = \"WebSocket echo: \" + e.data; ws.close(); }};\n\
         ws.onerror = () => {{ out.textContent = \"WebSocket failed\"; }};\n"
    );
    (
        [(axum::http::header::CONTENT_TYPE, "text/javascript")],
        script,
    )
        .into_response()
}

async fn page(
    State(info): State<Arc<JupyterInfo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    // Like Jupyter under its base URL: nothing outside it.
    if !uri.path().starts_with(&info.base_path) {
        return (
            StatusCode::NOT_FOUND,
            "404: not under this Jupyter's base URL",
        )
            .into_response();
    }
    if !token_ok(&info, &query, &headers) {
        return (StatusCode::FORBIDDEN, "403: invalid or missing token").into_response();
    }
    touch(&info);
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path={}; HttpOnly; SameSite=Lax",
        info.session, info.base_path
    );
    let html = Html(format!(
        "<!doctype html><title>Jupyter (simulated)</title><link rel=\"icon\" href=\"data:,\">\
         <h1>Simulated Jupyter</h1>\
         <p>This stands in for the Jupyter server that repo2docker would build from \
         <code>{}</code> at <code>{}</code>.</p><p>You opened <code>{}</code>.</p>\
         <p id=\"echo\">WebSocket: connecting</p>\
         <script src=\"{}static/simulated.js\"></script>",
        esc(&info.repo),
        esc(&info.git_ref),
        esc(uri.path()),
        esc(&info.base_path),
    ));
    ([(axum::http::header::SET_COOKIE, cookie)], html).into_response()
}

/// Act out the launch script. Runs until the server is deleted (aborted),
/// or until stackbinder says it no longer expects this VM (409).
pub async fn run(
    http: reqwest::Client,
    data: LaunchData,
    address: Ipv4Addr,
    jupyter: Jupyter,
    script: VmScript,
    timings: Timings,
    console: Arc<Mutex<Vec<String>>>,
) {
    let reporter = Reporter {
        http,
        data,
        console,
    };
    let cloning = vec![format!(
        "Cloning {} at {}",
        reporter.data.repo, reporter.data.git_ref
    )];
    if reporter
        .report(1, Some(Progress::Cloning), None, cloning)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    tokio::time::sleep(timings.clone).await;
    let building = vec![
        "Picked Git content provider.".into(),
        "Using PythonBuildPack builder".into(),
        "Step 1/52 : FROM docker.io/library/buildpack-deps:jammy".into(),
        "Step 27/52 : RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install -r requirements.txt".into(),
    ];
    if reporter
        .report(2, Some(Progress::Building), None, building)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    tokio::time::sleep(timings.build).await;
    if let VmScript::BuildFails(lines) = script {
        reporter
            .report(3, Some(Progress::Failed), None, lines)
            .await;
        return;
    }
    if let VmScript::ExternalJupyter(port) = script {
        reporter
            .report(4, Some(Progress::Ready), Some(port), Vec::new())
            .await;
        return;
    }
    let listener = match jupyter.bind(address).await {
        Some(l) => l,
        None => jupyter
            .bind(Ipv4Addr::LOCALHOST)
            .await
            .expect("a loopback port is free"),
    };
    let bound = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((address, jupyter.info.port)));
    let port = bound.port();
    let starting = vec![format!("Starting Jupyter on port {port}")];
    if reporter
        .report(3, Some(Progress::Starting), None, starting)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    if let VmScript::RealJupyter(command) = script {
        // The real one takes the port over; it is free again once dropped.
        drop(listener);
        let running =
            real_jupyter::start(&command, &reporter.data, bound, &reporter.console).await;
        match running {
            Ok(real) => {
                let answers = vec![format!("JupyterLab answers at {bound}")];
                if reporter
                    .report(4, Some(Progress::Ready), Some(port), answers)
                    .await
                    == Delivery::Unwanted
                {
                    return;
                }
                // Runs until the server is deleted: this task is aborted,
                // and dropping `real` stops Jupyter.
                real.wait().await;
            }
            Err(why) => {
                reporter
                    .report(4, Some(Progress::Failed), None, vec![why])
                    .await;
            }
        }
        return;
    }
    tokio::time::sleep(timings.start).await;
    let running = vec!["Jupyter Server 2.14.0 is running".into()];
    let ready = reporter.report(4, Some(Progress::Ready), Some(port), running);
    if matches!(script, VmScript::JupyterNeverAnswers) {
        drop(listener);
        ready.await;
        return;
    }
    // Jupyter answers before the VM says `ready`, as on a real VM (the
    // script reports once Jupyter's /api answers): stackbinder's probe
    // must never wait for a Jupyter that is not serving yet.
    let serving = axum::serve(listener, jupyter.router()).into_future();
    tokio::pin!(serving);
    tokio::select! {
        _ = &mut serving => return,
        delivery = ready => if delivery == Delivery::Unwanted {
            return;
        },
    }
    let _ = serving.await;
}

/// How `launch.sh` retries a report (`STACKBINDER_RETRIES`,
/// `STACKBINDER_RETRY_SECONDS`, curl's `--max-time`): about two minutes.
const ATTEMPTS: u32 = 40;
const RETRY_DELAY: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Taken,
    /// 409: stackbinder no longer expects this VM; the script stops.
    Unwanted,
    /// Refused for good (401, 400, 413...), or no answer after every attempt:
    /// the script goes on without it, as `launch.sh` does.
    Lost,
}

/// What one attempt came to.
enum Answer {
    Taken,
    /// 409: stackbinder no longer expects this VM.
    Unwanted,
    /// A refusal for good: 400, 401, 413...
    Refused(StatusCode),
    /// Overloaded, failing or unreachable: try again after this long.
    Retry(Duration, String),
}

/// The answer to one attempt, judged the way `launch.sh` does: retry while
/// stackbinder is overloaded (429, as long as `Retry-After` says), failing
/// (5xx) or unreachable; stop on 409; give up on any other refusal.
fn judge(sent: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Answer::Retry(RETRY_DELAY, format!("stackbinder is unreachable ({e})")),
    };
    let status = response.status();
    if status.is_success() {
        Answer::Taken
    } else if status == StatusCode::CONFLICT {
        Answer::Unwanted
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(RETRY_DELAY, Duration::from_secs);
        Answer::Retry(wait, "stackbinder asks to slow down (HTTP 429)".into())
    } else if status.is_server_error() {
        Answer::Retry(
            RETRY_DELAY,
            format!("stackbinder answered HTTP {}", status.as_u16()),
        )
    } else {
        Answer::Refused(status)
    }
}

struct Reporter {
    http: reqwest::Client,
    data: LaunchData,
    console: Arc<Mutex<Vec<String>>>,
}

impl Reporter {
    /// Print a line on the VM's console, as the script does.
    fn say(&self, line: &str) {
        push_console(&self.console, line);
    }

    /// POST one report, retrying like the script's `post` does; every
    /// retry and its reason is on the console.
    async fn report(
        &self,
        seq: i64,
        phase: Option<Progress>,
        port: Option<u16>,
        log: Vec<String>,
    ) -> Delivery {
        for line in &log {
            self.say(line);
        }
        let body = CallbackReport {
            vm: self.data.vm_id,
            seq,
            phase,
            port,
            log,
        };
        for _ in 0..ATTEMPTS {
            let sent = self
                .http
                .post(self.data.callback_url.clone())
                .bearer_auth(&self.data.callback_secret)
                .timeout(ATTEMPT_TIMEOUT)
                .json(&body)
                .send()
                .await;
            match judge(sent) {
                Answer::Taken => return Delivery::Taken,
                Answer::Unwanted => {
                    self.say("stackbinder no longer expects this VM (HTTP 409); stopping");
                    return Delivery::Unwanted;
                }
                Answer::Refused(status) => {
                    self.say(&format!(
                        "stackbinder refused a report (HTTP {})",
                        status.as_u16()
                    ));
                    return Delivery::Lost;
                }
                Answer::Retry(wait, why) => {
                    self.say(&format!(
                        "report {seq} not taken: {why}; trying again in {} s",
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.say(&format!(
            "stackbinder did not answer after {ATTEMPTS} attempts; going on"
        ));
        Delivery::Lost
    }
}

/// A line of the VM's launch script on its console.
fn push_console(console: &Mutex<Vec<String>>, line: &str) {
    console
        .lock()
        .expect("console lock")
        .push(format!("stackbinder-launch: {line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        let mut response = axum::http::Response::builder().status(status);
        if let Some(seconds) = retry_after {
            response = response.header("retry-after", seconds);
        }
        judge(Ok(reqwest::Response::from(response.body("").unwrap())))
    }

    #[test]
    fn reports_are_retried_as_launch_sh_does() {
        assert!(matches!(answer(200, None), Answer::Taken));
        assert!(matches!(answer(409, None), Answer::Unwanted));
        assert!(matches!(answer(401, None), Answer::Refused(s) if s == StatusCode::UNAUTHORIZED));
        assert!(matches!(answer(413, None), Answer::Refused(_)));
        assert!(
            matches!(answer(429, Some("7")), Answer::Retry(d, _) if d == Duration::from_secs(7))
        );
        assert!(matches!(answer(429, None), Answer::Retry(d, _) if d == RETRY_DELAY));
        assert!(matches!(answer(503, None), Answer::Retry(d, _) if d == RETRY_DELAY));
        assert!(matches!(answer(500, Some("60")), Answer::Retry(d, _) if d == RETRY_DELAY));
    }
}
