//! HTTP: one module per page or flow. Handlers parse input into validated
//! types, check who is asking, and hand the work to the provisioner.

mod admin;
mod admin_storage;
mod api_v1;
mod archive;
mod assets;
mod auth;
mod callback;
mod client_ip;
mod delete;
mod error;
mod extend;
mod guard;
mod health;
mod home;
mod launch;
mod launch_outlook;
mod layout;
mod metrics;
pub(crate) mod profile_choice;
mod register;
mod session;
mod session_store;
mod status;
mod storage;
mod storage_view;
mod tarpit;
mod tokens;

pub use api_v1::ApiRateLimit;
pub use client_ip::forwarded_for_warning;
pub use error::WebError;
pub use guard::{ADDRESS_ALLOWANCE, GuessGuard};
pub use session::{RegisteredUser, SESSION_COOKIE, keep_alive_session, safe_next};
pub use session_store::SessionRows;
pub use storage_view::human_bytes;
pub use tarpit::Tarpit;

use crate::config::Config;
use crate::provision::Provisioner;
use crate::store::Store;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use secrecy::SecretString;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// How people log in.
#[derive(Clone)]
pub enum LoginMode {
    /// GitHub OAuth (`serve`).
    Github(Box<crate::github::Github>),
    /// A form that accepts any name (`demo` only; never offered by `serve`).
    Demo,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub provisioner: Provisioner,
    pub login_mode: LoginMode,
    pub registration_secret: Option<Arc<SecretString>>,
    /// Who may log in, register, use and administer this server.
    pub access: Arc<crate::access::Access>,
    /// Locks out clients that guess registration secrets.
    pub guesses: Arc<GuessGuard>,
    /// Holds back the refusals of locked-out addresses.
    pub tarpit: Arc<Tarpit>,
    /// Requests per API token (`[api] requests_per_minute`).
    pub api_limit: Arc<ApiRateLimit>,
    /// Fires at shutdown, so long-lived event streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The reverse proxy to the users' Jupyter servers.
    pub proxy: crate::proxy::Proxy,
}

/// No inline script, no framing, no sniffing, and no referrer: a page
/// URL can carry a Jupyter token or a registration secret.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The request span: method and path, with the registration secret cut
/// out, and no query string (it is the user's business).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = request.uri().path();
    let path = if path.starts_with("/register/") {
        "/register/[redacted]"
    } else {
        path
    };
    tracing::info_span!("request", method = %request.method(), path)
}

pub fn router(state: AppState) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    // stackbinder's own pages get its strict headers; the proxied Jupyter
    // brings its own (its pages need inline scripts and framing).
    let pages = Router::new()
        .merge(home::router())
        .merge(admin::router())
        .merge(admin_storage::router())
        .merge(auth::router())
        .merge(register::router())
        .merge(launch::router())
        .merge(status::router())
        .merge(delete::router())
        .merge(extend::router())
        .merge(tokens::router())
        .merge(storage::router())
        .merge(archive::router())
        .merge(callback::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(assets::router())
        .fallback(|| async { WebError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layout::with_cloud_kind,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
                .layer(header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(header(header::REFERRER_POLICY, "no-referrer"))
                .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
        )
        // Not around the proxy, which would read the session on every
        // request for it: it keeps the session alive when it checks it.
        .layer(axum::middleware::from_fn(session::keep_alive));
    Router::new()
        .merge(crate::proxy::router())
        .merge(api_v1::router())
        .merge(pages)
        .layer(session::layer(&state))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::proxy::user_hosts,
        ))
        .with_state(state)
}
