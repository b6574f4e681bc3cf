//! The authenticated reverse proxy: `/user/<login>/…` (JupyterHub's
//! scheme) to the Jupyter of that user's VM, at its fixed address, for the
//! VM's owner only. HTTP of every method and WebSockets; bodies streamed;
//! nothing rewritten but hop-by-hop headers, our cookies, `X-Forwarded-*`
//! and redirects to the VM's own address.
//!
//! - `route`: the login in the path, refusing ambiguous paths;
//! - `access`: the owner's ready VM, or the same 404 for everyone else;
//! - `grants`: what a session checked a moment ago may reach, so that a
//!   busy notebook costs no query per request;
//! - `headers`: what changes in the headers (pure);
//! - `forward`: HTTP through hyper's client; `websocket`: upgrades;
//! - `activity`: last use per VM, for idle culling;
//! - `user_domain`: per-user origins with one-time hand-over tickets.

mod access;
mod activity;
mod forward;
mod grants;
mod headers;
mod route;
mod user_domain;
mod websocket;

pub use activity::Activity;
pub use user_domain::{TICKET_PATH, USER_COOKIE};

use crate::access::{Action, Decision};
use crate::domain::{GithubId, Login, VmId};
use crate::web::{AppState, RegisteredUser, SESSION_COOKIE, WebError};
use activity::Stamp;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use route::BadTarget;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use url::Url;
use user_domain::{Lifetimes, UserDomains};

/// Cookies of stackbinder: never forwarded to a VM, never set by one.
const OUR_COOKIES: &[&str] = &[SESSION_COOKIE, USER_COOKIE];

/// The proxy's shared parts: one pooled client for all VMs, the tickets
/// and host sessions of per-user origins.
#[derive(Clone)]
pub struct Proxy {
    client: forward::Client,
    domains: Arc<UserDomains>,
    grants: Arc<grants::Grants>,
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            client: forward::client(),
            domains: Arc::default(),
            grants: Arc::default(),
        }
    }
}

/// Where one request goes.
#[derive(Debug, Clone, Copy)]
pub struct Upstream {
    pub vm: VmId,
    pub addr: SocketAddr,
}

/// Everything a request needs on its way through.
pub struct Hop {
    client: forward::Client,
    upstream: Upstream,
    /// The origin the browser is on (main or the user's host).
    origin: Url,
    client_ip: Option<IpAddr>,
    trust_forwarded_for: bool,
    stamp: Arc<Stamp>,
    shutdown: CancellationToken,
}

/// Why the proxy did not forward a request.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not yours, not there, not ready: one answer for all.
    #[error("not found")]
    NotFound,
    #[error("an ambiguous path")]
    Ambiguous,
    #[error("login required")]
    LoginRequired { next: String },
    #[error("a WebSocket from another origin")]
    ForeignOrigin,
    #[error("an unknown, used or expired hand-over ticket")]
    BadTicket,
    #[error("the VM does not answer: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<BadTarget> for ProxyError {
    fn from(bad: BadTarget) -> Self {
        match bad {
            BadTarget::NotFound => Self::NotFound,
            BadTarget::Ambiguous => Self::Ambiguous,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let plain = |status: StatusCode, message: &'static str| {
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response()
        };
        match self {
            Self::NotFound => WebError::NotFound.into_response(),
            Self::LoginRequired { next } => WebError::LoginRequired { next }.into_response(),
            Self::Internal(e) => WebError::Internal(e).into_response(),
            Self::Ambiguous => plain(
                StatusCode::BAD_REQUEST,
                "This path has `.` or `..` segments or encoded slashes; Jupyter makes no such paths.",
            ),
            Self::ForeignOrigin => plain(
                StatusCode::FORBIDDEN,
                "A page of another site may not open a WebSocket to your Jupyter.",
            ),
            Self::BadTicket => plain(
                StatusCode::BAD_REQUEST,
                "This sign-in link was used already or has expired. Open your Jupyter link again.",
            ),
            Self::Unreachable(why) => {
                tracing::warn!(error = %why, "the VM's Jupyter does not answer");
                plain(
                    StatusCode::BAD_GATEWAY,
                    "Your Jupyter server does not answer. If it was just started, wait a moment and reload.",
                )
            }
        }
    }
}

/// `/user/…` on the main origin.
pub fn router() -> Router<AppState> {
    Router::new().route("/user/{*rest}", any(main_origin))
}

async fn main_origin(State(app): State<AppState>, request: Request) -> Response {
    serve_main_origin(&app, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// A request that may be sent through login (a page, not an API call or
/// a WebSocket, which cannot be replayed after it).
fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && !websocket::is_upgrade(headers)
}

async fn serve_main_origin(app: &AppState, request: Request) -> Result<Response, ProxyError> {
    let login = route::login_of(request.uri().path())?;
    let (mut parts, body) = request.into_parts();
    let grant = match granted(app, &parts.headers, &login) {
        Some(grant) => grant,
        None => check(app, &mut parts, &login).await?,
    };
    let (user, upstream) = (grant.user, grant.upstream);
    let span = tracing::info_span!("proxy", user = %grant.login, vm = %upstream.vm);
    async {
        let server = &app.config.server;
        let Some(domain) = &server.user_domain else {
            let origin = server.public_url.clone();
            return pass(app, Request::from_parts(parts, body), upstream, origin).await;
        };
        if !is_navigation(&parts.method, &parts.headers) {
            return Err(ProxyError::NotFound);
        }
        let next = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let ticket = app.proxy.domains.issue(user, &login, next);
        let mut target = user_domain::user_origin(&server.public_url, domain, login.as_str())
            .join(TICKET_PATH.trim_start_matches('/'))
            .expect("the ticket path is a valid path");
        target.query_pairs_mut().append_pair("ticket", &ticket);
        Ok(Redirect::to(target.as_str()).into_response())
    }
    .instrument(span)
    .await
}

/// The session's grant for `/user/<login>/`, when it was checked a moment
/// ago and nothing that could take it away has happened since. Only a
/// request with one session cookie: with several, which one the session
/// layer reads is its business, and the grant would be filed under a
/// cookie that was not checked.
fn granted(app: &AppState, headers: &HeaderMap, login: &Login) -> Option<grants::Grant> {
    let cookie = single_cookie(headers, SESSION_COOKIE)?;
    let generation = app.store.access_generation().current();
    app.proxy
        .grants
        .get(cookie, login, generation, std::time::Instant::now())
}

/// The full check: the session, the user and the access rules, their
/// ready VM; remembered as a grant when it lets the request through.
async fn check(
    app: &AppState,
    parts: &mut axum::http::request::Parts,
    login: &Login,
) -> Result<grants::Grant, ProxyError> {
    // Read before the queries (see `Grants::put`).
    let generation = app.store.access_generation().current();
    let registered = match RegisteredUser::from_request_parts(parts, app).await {
        Ok(registered) => registered,
        Err(WebError::LoginRequired { next }) if is_navigation(&parts.method, &parts.headers) => {
            return Err(ProxyError::LoginRequired { next });
        }
        Err(WebError::Internal(e)) => return Err(ProxyError::Internal(e)),
        Err(_) => return Err(ProxyError::NotFound),
    };
    // Working in Jupyter is using stackbinder: the session stays alive.
    crate::web::keep_alive_session(&registered.visitor.session).await;
    let user = registered.user;
    let upstream = access::upstream_of(&app.store, user.github_id, login).await?;
    let grant = grants::Grant::checked(
        (user.github_id, user.login, upstream),
        generation,
        std::time::Instant::now(),
    );
    if let Some(cookie) = single_cookie(&parts.headers, SESSION_COOKIE) {
        app.proxy.grants.put(cookie, grant.clone());
    }
    Ok(grant)
}

/// Forward a request that has passed every check.
async fn pass(
    app: &AppState,
    request: Request,
    upstream: Upstream,
    origin: Url,
) -> Result<Response, ProxyError> {
    let client_ip = client_ip(&request);
    let upgrade = websocket::is_upgrade(request.headers());
    if upgrade && !websocket::origin_allowed(request.headers(), &origin) {
        return Err(ProxyError::ForeignOrigin);
    }
    let stamp = app.provisioner.activity().stamp(upstream.vm);
    stamp.touch();
    let hop = Hop {
        client: app.proxy.client.clone(),
        upstream,
        origin,
        client_ip,
        trust_forwarded_for: app.config.server.trust_forwarded_for,
        stamp,
        shutdown: app.shutdown.clone(),
    };
    if upgrade {
        websocket::forward(request, &hop).await
    } else {
        forward::http(request, &hop).await
    }
}

/// The peer's address (the server is always run with connect info).
fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// In front of everything: a request for a user's host
/// (`<login>.<server.user_domain>`) goes to that user's Jupyter and
/// nowhere else; stackbinder's pages are never served there.
pub async fn user_hosts(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(domain) = app.config.server.user_domain.as_deref() else {
        return next.run(request).await;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let Some(host_login) = host.and_then(|h| user_domain::host_login(h, domain)) else {
        return next.run(request).await;
    };
    let span = tracing::info_span!("user host", user = %host_login, vm = tracing::field::Empty);
    serve_user_host(&app, host_login, request)
        .instrument(span)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn serve_user_host(
    app: &AppState,
    host_login: Login,
    request: Request,
) -> Result<Response, ProxyError> {
    let server = &app.config.server;
    let domain = server.user_domain.as_deref().unwrap_or_default();
    let lifetimes = Lifetimes {
        idle: server.session_idle(),
        max: server.session_max(),
    };
    if request.uri().path() == TICKET_PATH {
        return redeem(app, &host_login, &request, lifetimes);
    }
    let login = route::login_of(request.uri().path())?;
    if !login.as_str().eq_ignore_ascii_case(host_login.as_str()) {
        return Err(ProxyError::NotFound);
    }
    let user = cookie(request.headers(), USER_COOKIE)
        .and_then(|c| app.proxy.domains.user_of(c, &host_login, lifetimes));
    let Some(user) = user else {
        // No session on this host yet: the main origin logs in if needed
        // and hands over with a ticket.
        if !is_navigation(request.method(), request.headers()) {
            return Err(ProxyError::NotFound);
        }
        let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let main = server
            .public_url
            .join(path.trim_start_matches('/'))
            .map_err(|_| ProxyError::NotFound)?;
        return Ok(Redirect::to(main.as_str()).into_response());
    };
    ensure_still_allowed(app, user).await?;
    let upstream = access::upstream_of(&app.store, user, &login).await?;
    tracing::Span::current().record("vm", tracing::field::display(upstream.vm));
    let origin = user_domain::user_origin(&server.public_url, domain, host_login.as_str());
    pass(app, request, upstream, origin).await
}

/// A host session outlives no removal or block: the user is looked up
/// again on every request (their VM is, too, in `access`).
async fn ensure_still_allowed(app: &AppState, user: GithubId) -> Result<(), ProxyError> {
    let user = app
        .store
        .user(user)
        .await
        .map_err(|e| ProxyError::Internal(e.into()))?
        .ok_or(ProxyError::NotFound)?;
    match app.access.decide(&user, Action::ReachJupyter) {
        Decision::Allowed(_) => Ok(()),
        Decision::Refused(_) => Err(ProxyError::NotFound),
    }
}

fn redeem(
    app: &AppState,
    host_login: &Login,
    request: &Request,
    lifetimes: Lifetimes,
) -> Result<Response, ProxyError> {
    let ticket = request
        .uri()
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "ticket")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or(ProxyError::BadTicket)?;
    let (cookie, next) = app
        .proxy
        .domains
        .redeem(&ticket, host_login, lifetimes)
        .ok_or(ProxyError::BadTicket)?;
    let secure = if app.config.server.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    // Host-only (no Domain attribute): no other user's host receives it.
    let set_cookie = format!("{USER_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax{secure}");
    let mut response = Redirect::to(&crate::web::safe_next(&next)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set_cookie).map_err(|e| ProxyError::Internal(e.into()))?,
    );
    Ok(response)
}

/// The values of cookie `name` in the request's `Cookie` headers.
fn cookies<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers, name).next()
}

/// The value of cookie `name`, when the request has exactly one.
fn single_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut all = cookies(headers, name);
    let first = all.next()?;
    all.next().is_none().then_some(first)
}
