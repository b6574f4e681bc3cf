//! A simulated VM: what `cloud-init/launch.sh` does on a real one, acted out
//! in-process. It reports its progress to stackbinder's callback endpoint
//! with the per-VM secret, and then serves a small Jupyter stand-in that
//! checks the token, so the demo's Jupyter link really opens something.

use super::simulated::Timings;
use crate::cloud_init::{CallbackReport, LaunchData};
use crate::domain::Progress;
use axum::Router;
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
    Succeeds,
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
    started: chrono::DateTime<chrono::Utc>,
    /// Moved forward by every page the owner opens, as in Jupyter.
    last_activity: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
}

/// The Jupyter stand-in: `/api` like Jupyter Server, every other page needs
/// the token.
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
        Router::new()
            .route("/api", get(api_version))
            .route("/api/status", get(api_status))
            // Under the proxy's base path too (`--ServerApp.base_url`).
            .route("/user/{login}/api", get(api_version))
            .route("/user/{login}/api/status", get(api_status))
            .fallback(get(page))
            .with_state(self.info.clone())
    }

    /// Listen on `ip` at the Jupyter port, or any port if that one is taken.
    async fn bind(&self, ip: Ipv4Addr) -> Option<tokio::net::TcpListener> {
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

async fn api_version() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "version": "2.14.0 (stackbinder simulator)" }))
}

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
    presented.is_some_and(|t| crate::secret::equal(t.as_bytes(), info.token.as_bytes()))
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

async fn page(
    State(info): State<Arc<JupyterInfo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if !token_ok(&info, &query, &headers) {
        return (StatusCode::FORBIDDEN, "403: invalid or missing token").into_response();
    }
    *info.last_activity.lock().expect("activity lock") = chrono::Utc::now();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Html(format!(
        "<!doctype html><title>Jupyter (simulated)</title>\
         <h1>Simulated Jupyter</h1>\
         <p>This stands in for the Jupyter server that repo2docker would build from \
         <code>{}</code> at <code>{}</code>.</p><p>You opened <code>{}</code>.</p>",
        esc(&info.repo),
        esc(&info.git_ref),
        esc(uri.path())
    ))
    .into_response()
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
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(jupyter.info.port);
    let starting = vec![format!("Starting Jupyter on port {port}")];
    if reporter
        .report(3, Some(Progress::Starting), None, starting)
        .await
        == Delivery::Unwanted
    {
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
