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

/// Act out the launch script. Runs until the server is deleted (aborted).
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
    reporter
        .report(
            1,
            Some(Progress::Cloning),
            None,
            vec![format!(
                "Cloning {} at {}",
                reporter.data.repo, reporter.data.git_ref
            )],
        )
        .await;
    tokio::time::sleep(timings.clone).await;
    reporter
        .report(
            2,
            Some(Progress::Building),
            None,
            vec![
                "Picked Git content provider.".into(),
                "Using PythonBuildPack builder".into(),
                "Step 1/52 : FROM docker.io/library/buildpack-deps:jammy".into(),
                "Step 27/52 : RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install -r requirements.txt"
                    .into(),
            ],
        )
        .await;
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
    reporter
        .report(
            3,
            Some(Progress::Starting),
            None,
            vec![format!("Starting Jupyter on port {port}")],
        )
        .await;
    tokio::time::sleep(timings.start).await;
    reporter
        .report(
            4,
            Some(Progress::Ready),
            Some(port),
            vec!["Jupyter Server 2.14.0 is running".into()],
        )
        .await;
    if matches!(script, VmScript::JupyterNeverAnswers) {
        return;
    }
    let _ = axum::serve(listener, jupyter.router()).await;
}

struct Reporter {
    http: reqwest::Client,
    data: LaunchData,
    console: Arc<Mutex<Vec<String>>>,
}

impl Reporter {
    /// POST one report, retrying briefly like the script's curl does.
    async fn report(&self, seq: i64, phase: Option<Progress>, port: Option<u16>, log: Vec<String>) {
        {
            let mut console = self.console.lock().expect("console lock");
            console.extend(log.iter().map(|l| format!("stackbinder-launch: {l}")));
        }
        let body = CallbackReport {
            vm: self.data.vm_id,
            seq,
            phase,
            port,
            log,
        };
        for attempt in 0..5u64 {
            let sent = self
                .http
                .post(self.data.callback_url.clone())
                .bearer_auth(&self.data.callback_secret)
                .json(&body)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success() || r.status().is_client_error()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
    }
}
