//! The Jupyter stand-in a simulated VM serves: under `/user/<login>/`
//! like the real one started by `launch.sh`, it checks the token and
//! answers WebSockets, so the demo's Jupyter link really opens something.

use crate::cloud_init::LaunchData;
use crate::domain::Ide;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

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

    /// The port Jupyter listens on, as the launch data says.
    pub(super) fn port(&self) -> u16 {
        self.info.port
    }

    /// Pretend the last activity was at `at` (idle-culling drills).
    pub fn set_last_activity(&self, at: chrono::DateTime<chrono::Utc>) {
        *self.info.last_activity.lock().expect("activity lock") = at;
    }

    pub(super) fn router(&self) -> Router {
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

/// The stand-in is an environment as repo2docker builds one from a plain
/// `requirements.txt`: JupyterLab and the classic Notebook, and no
/// jupyter-server-proxy entries (RStudio, VS Code, a desktop), whose paths
/// are not found, as on a real VM.
fn lacked_interface(path: &str) -> Option<Ide> {
    Ide::ALL
        .into_iter()
        .filter(|ide| !matches!(ide, Ide::Lab | Ide::Notebook))
        .find(|ide| {
            path.strip_prefix(ide.path())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
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
    if let Some(ide) = lacked_interface(&uri.path()[info.base_path.len()..]) {
        return (
            StatusCode::NOT_FOUND,
            format!("404: this environment has no {}", ide.label()),
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
