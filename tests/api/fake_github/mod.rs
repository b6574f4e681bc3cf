//! A fake GitHub on 127.0.0.1: the OAuth authorization and token endpoints
//! and the few API endpoints stackbinder calls, with GitHub's quirks.
//!
//! - The authorize page needs a signed-in GitHub user: the test plays that
//!   user with `approve` (or refuses with `deny`). A code is single-use,
//!   expires, and is bound to the client, the `redirect_uri` and the PKCE
//!   challenge.
//! - The token endpoint answers form-urlencoded unless JSON is asked for
//!   (`Accept: application/json`), and a bad code gets HTTP 200 with
//!   `{"error": "bad_verification_code", ...}`.
//! - The API refuses requests without a User-Agent (403) and unknown tokens
//!   (401 "Bad credentials"); organization membership needs `read:org`.
//! - Every request is recorded with its answer, and faults can be switched on.
//!
//! `oauth` and `api` are the endpoints, `journey` the application logging
//! in through the fake, `behaves_like_github` the fake's own tests.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZero;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use url::Url;

mod api;
#[cfg(test)]
mod behaves_like_github;
mod journey;
mod oauth;

use api::*;
pub use journey::*;
use oauth::*;

pub const CLIENT_ID: &str = "stackbinder-test-client";
pub const CLIENT_SECRET: &str = "stackbinder-test-client-secret";
/// Ids of the fake's users start here (real GitHub ids are numbers too).
const FIRST_ID: i64 = 5_000_001;
/// The header the test sends to the authorize page to say which GitHub user
/// is signed in there (GitHub knows it from its own session cookie).
pub const SIGNED_IN_AS: &str = "x-fake-github-user";
/// The header that makes the signed-in user press "Cancel".
const DECISION: &str = "x-fake-github-decision";

/// One request the fake received, and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
    /// 0 while the answer is still being made (or was never sent).
    pub status: u16,
    pub answer: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The form fields of the body.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// The query parameters.
    pub fn query_pairs(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }
}

/// Faults to switch on; all off by default.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `GET /user` answers this status.
    pub user_status: Option<u16>,
    /// The membership endpoints answer this status.
    pub membership_status: Option<u16>,
    /// The token endpoint takes this long to answer.
    pub token_delay: Option<Duration>,
    /// `GET /user` takes this long to answer.
    pub user_delay: Option<Duration>,
    /// Tokens are revoked as soon as they are issued (the API says 401).
    pub revoke_tokens: bool,
    /// The org membership endpoint answers only once a permit is added here:
    /// a test holds requests of the app at GitHub for as long as it likes.
    pub membership_gate: Option<Arc<tokio::sync::Semaphore>>,
}

struct Grant {
    user_id: i64,
    client_id: String,
    redirect_uri: Option<String>,
    challenge: Option<String>,
    scope: String,
    issued: Instant,
}

struct Token {
    user_id: i64,
    scope: String,
}

#[derive(Default)]
struct Inner {
    /// id → login
    users: HashMap<i64, String>,
    next_id: i64,
    /// The OAuth app's callback URL, once the test knows it.
    callback: Option<String>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Token>,
    /// org (lowercase) → login (lowercase) → "active" | "pending"
    orgs: HashMap<String, HashMap<String, String>>,
    /// (org, team) (lowercase) → login (lowercase) → state
    teams: HashMap<(String, String), HashMap<String, String>>,
    requests: Vec<Recorded>,
    faults: Faults,
    code_lifetime: Option<Duration>,
}

#[derive(Clone)]
pub struct FakeGithub {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> MutexGuard<'_, Inner> {
    inner.lock().expect("the fake GitHub's lock")
}

impl FakeGithub {
    /// Start the fake on a free port of 127.0.0.1; it runs until the test's
    /// runtime ends.
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            next_id: FIRST_ID,
            ..Inner::default()
        }));
        let api = Router::new()
            .route("/user", get(user))
            .route("/user/memberships/orgs/{org}", get(org_membership))
            .route(
                "/orgs/{org}/teams/{team}/memberships/{login}",
                get(team_membership),
            );
        let router = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .merge(api.clone())
            // GitHub Enterprise serves the API under /api/v3.
            .nest("/api/v3", api)
            .layer(middleware::from_fn_with_state(inner.clone(), record))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fake GitHub binds");
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base: format!("http://{address}"),
            inner,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn authorize_url(&self) -> Url {
        Url::parse(&format!("{}/login/oauth/authorize", self.base)).unwrap()
    }

    pub fn token_url(&self) -> Url {
        Url::parse(&format!("{}/login/oauth/access_token", self.base)).unwrap()
    }

    /// The API as GitHub Enterprise serves it (with a path prefix).
    pub fn api_url(&self) -> Url {
        Url::parse(&format!("{}/api/v3", self.base)).unwrap()
    }

    /// The OAuth app's callback URL: other `redirect_uri`s are refused.
    pub fn register_callback(&self, url: &str) {
        self.lock().callback = Some(url.to_owned());
    }

    /// A GitHub account; returns its numeric id.
    pub fn add_user(&self, login: &str) -> i64 {
        let mut inner = self.lock();
        if let Some((&id, _)) = inner
            .users
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(login))
        {
            return id;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.users.insert(id, login.to_owned());
        id
    }

    /// The account `id` changes its login (GitHub allows renames).
    pub fn rename_user(&self, id: i64, new_login: &str) {
        let mut inner = self.lock();
        assert!(inner.users.contains_key(&id), "no fake user {id}");
        inner.users.insert(id, new_login.to_owned());
    }

    /// `state` is "active" or "pending" (invited, not yet accepted).
    pub fn set_org_membership(&self, org: &str, login: &str, state: &str) {
        self.lock()
            .orgs
            .entry(org.to_lowercase())
            .or_default()
            .insert(login.to_lowercase(), state.to_owned());
    }

    pub fn remove_org_member(&self, org: &str, login: &str) {
        if let Some(members) = self.lock().orgs.get_mut(&org.to_lowercase()) {
            members.remove(&login.to_lowercase());
        }
    }

    pub fn add_team_member(&self, org: &str, team: &str, login: &str) {
        self.lock()
            .teams
            .entry((org.to_lowercase(), team.to_lowercase()))
            .or_default()
            .insert(login.to_lowercase(), "active".to_owned());
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// How long a code may wait before it is exchanged (GitHub: 10 minutes).
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.lock().code_lifetime = Some(lifetime);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests whose path ends with `suffix`.
    pub fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.requests_to("/login/oauth/access_token")
    }

    pub fn authorize_requests(&self) -> Vec<Recorded> {
        self.requests_to("/login/oauth/authorize")
    }

    pub fn user_requests(&self) -> Vec<Recorded> {
        self.requests_to("/user")
    }

    /// Open `authorize_url` as the signed-in GitHub user `login` and press
    /// "Authorize": returns where GitHub sends the browser back to.
    pub async fn approve(&self, authorize_url: &str, login: &str) -> Url {
        self.add_user(login);
        self.visit_authorize(authorize_url, login, "approve").await
    }

    /// Open `authorize_url` and press "Cancel".
    pub async fn deny(&self, authorize_url: &str, login: &str) -> Url {
        self.add_user(login);
        self.visit_authorize(authorize_url, login, "deny").await
    }

    async fn visit_authorize(&self, authorize_url: &str, login: &str, decision: &str) -> Url {
        assert!(
            authorize_url.starts_with(&self.base),
            "the login goes to the fake GitHub, not to {authorize_url}"
        );
        let response = github_browser()
            .get(authorize_url)
            .header(SIGNED_IN_AS, login)
            .header(DECISION, decision)
            .send()
            .await
            .expect("the fake GitHub answers");
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "the authorize page redirects back: {:?}",
            response.text().await
        );
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        Url::parse(location).expect("an absolute callback URL")
    }
}

/// A browser at GitHub (no cookies of the app, no redirects followed).
pub fn github_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Record each request before it is handled (a client may give up before
/// the answer), and its answer after.
async fn record(State(inner): State<Shared>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let index = {
        let mut inner = lock(&inner);
        inner.requests.push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            status: 0,
            answer: String::new(),
        });
        inner.requests.len() - 1
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    {
        let mut inner = lock(&inner);
        let entry = &mut inner.requests[index];
        entry.status = parts.status.as_u16();
        entry.answer = String::from_utf8_lossy(&bytes).into_owned();
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn html(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><html><body><p>{text}</p></body></html>"),
    )
        .into_response()
}

fn redirect(to: Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}
