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

/// `GET /login/oauth/authorize`
async fn authorize(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&inner);
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        // GitHub shows a 404 page for an unknown OAuth app.
        return html(StatusCode::NOT_FOUND, "Not Found");
    }
    let callback = inner.callback.clone();
    let redirect_uri = q.get("redirect_uri").cloned();
    let back_to = match (&redirect_uri, &callback) {
        (Some(uri), Some(registered)) if !uri.starts_with(registered.as_str()) => {
            return html(
                StatusCode::OK,
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        (Some(uri), _) => uri.clone(),
        (None, Some(registered)) => registered.clone(),
        (None, None) => return html(StatusCode::OK, "This OAuth app has no callback URL."),
    };
    let mut back = match Url::parse(&back_to) {
        Ok(url) => url,
        Err(_) => return html(StatusCode::OK, "The redirect_uri is not a URL."),
    };
    let state = q.get("state").cloned();
    let mut answer = |pairs: &[(&str, &str)]| {
        {
            let mut query = back.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
        }
        redirect(back.clone())
    };
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return answer(&[
            ("error", "invalid_request"),
            ("error_description", "code_challenge_method must be S256"),
        ]);
    }
    let Some(login) = headers.get(SIGNED_IN_AS).and_then(|v| v.to_str().ok()) else {
        return html(StatusCode::OK, "Sign in to GitHub to continue.");
    };
    let Some((&user_id, _)) = inner
        .users
        .iter()
        .find(|(_, l)| l.eq_ignore_ascii_case(login))
    else {
        return html(StatusCode::OK, "Incorrect username or password.");
    };
    if headers.get(DECISION).and_then(|v| v.to_str().ok()) == Some("deny") {
        return answer(&[
            ("error", "access_denied"),
            (
                "error_description",
                "The user has denied your application access.",
            ),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied",
            ),
        ]);
    }
    let code = random_hex(10);
    inner.codes.insert(
        code.clone(),
        Grant {
            user_id,
            client_id: CLIENT_ID.to_owned(),
            redirect_uri,
            challenge,
            scope: q
                .get("scope")
                .map(|s| {
                    s.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            issued: Instant::now(),
        },
    );
    answer(&[("code", &code)])
}

/// The client's id and secret, from HTTP Basic auth (RFC 6749: each part
/// form-urlencoded first) or from the body.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

/// GitHub answers in JSON only when asked; else form-urlencoded, and HTTP
/// 200 even for errors.
fn token_answer(headers: &HeaderMap, fields: &[(&str, &str)]) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            Value::Object(map).to_string(),
        )
            .into_response()
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

fn bad_verification_code(headers: &HeaderMap) -> Response {
    token_answer(
        headers,
        &[
            ("error", "bad_verification_code"),
            (
                "error_description",
                "The code passed is incorrect or expired.",
            ),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
            ),
        ],
    )
}

/// `POST /login/oauth/access_token`
async fn access_token(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let delay = lock(&shared).faults.token_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => {
            return token_answer(
                &headers,
                &[
                    ("error", "incorrect_client_credentials"),
                    (
                        "error_description",
                        "The client_id and/or client_secret passed are incorrect.",
                    ),
                ],
            );
        }
    }
    if form
        .get("grant_type")
        .is_some_and(|g| g != "authorization_code")
    {
        return token_answer(&headers, &[("error", "unsupported_grant_type")]);
    }
    let mut inner = lock(&shared);
    // A code is used up by its first presentation, right or wrong.
    let Some(grant) = form.get("code").and_then(|c| inner.codes.remove(c)) else {
        return bad_verification_code(&headers);
    };
    let lifetime = inner.code_lifetime.unwrap_or(Duration::from_secs(600));
    let fresh = grant.issued.elapsed() < lifetime;
    let same_client = grant.client_id == CLIENT_ID;
    let same_redirect = match &grant.redirect_uri {
        Some(uri) => form.get("redirect_uri") == Some(uri),
        None => true,
    };
    let pkce_ok = match &grant.challenge {
        Some(challenge) => form.get("code_verifier").is_some_and(|verifier| {
            (43..=128).contains(&verifier.len())
                && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
        }),
        None => true,
    };
    if !(fresh && same_client && same_redirect && pkce_ok) {
        return bad_verification_code(&headers);
    }
    let token = format!("gho_{}", random_hex(18));
    if !inner.faults.revoke_tokens {
        inner.tokens.insert(
            token.clone(),
            Token {
                user_id: grant.user_id,
                scope: grant.scope.clone(),
            },
        );
    }
    drop(inner);
    token_answer(
        &headers,
        &[
            ("access_token", &token),
            ("scope", &grant.scope),
            ("token_type", "bearer"),
        ],
    )
}

fn api_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    api_json(
        StatusCode::NOT_FOUND,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

/// Who the API caller is: GitHub's checks of the User-Agent and the token.
fn api_caller(inner: &Inner, headers: &HeaderMap) -> Result<(i64, String), Box<Response>> {
    if headers
        .get(header::USER_AGENT)
        .is_none_or(|v| v.as_bytes().is_empty())
    {
        return Err((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
             Check https://developer.github.com for other possible causes.\n",
        )
            .into_response()
            .into());
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    let Some(token) = token else {
        return Err(api_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
        .into());
    };
    match inner.tokens.get(token.trim()) {
        Some(t) => Ok((t.user_id, t.scope.clone())),
        None => Err(api_json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
        .into()),
    }
}

fn fault_status(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    api_json(
        status,
        json!({"message": status.canonical_reason().unwrap_or("error")}),
    )
}

/// `GET /user`
async fn user(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let delay = lock(&shared).faults.user_delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let inner = lock(&shared);
    let (id, _) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.user_status {
        return fault_status(status);
    }
    let login = &inner.users[&id];
    api_json(
        StatusCode::OK,
        json!({
            "login": login,
            "id": id,
            "node_id": format!("U_kgDO{id}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "html_url": format!("https://github.com/{login}"),
            "type": "User",
            "site_admin": false,
            "name": null,
            "email": null,
            "created_at": "2020-01-01T00:00:00Z"
        }),
    )
}

fn has_read_org(scope: &str) -> bool {
    scope
        .split(',')
        .any(|s| matches!(s.trim(), "read:org" | "write:org" | "admin:org"))
}

/// `GET /user/memberships/orgs/{org}`
async fn org_membership(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Response {
    let gate = lock(&shared).faults.membership_gate.clone();
    if let Some(gate) = gate {
        gate.acquire().await.expect("never closed").forget();
    }
    let inner = lock(&shared);
    let (id, scope) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.membership_status {
        return fault_status(status);
    }
    // Without read:org GitHub does not show the membership.
    if !has_read_org(&scope) {
        return not_found();
    }
    let login = inner.users[&id].to_lowercase();
    match inner
        .orgs
        .get(&org.to_lowercase())
        .and_then(|m| m.get(&login))
    {
        Some(state) => api_json(
            StatusCode::OK,
            json!({
                "url": format!("https://api.github.com/orgs/{org}/memberships/{login}"),
                "state": state,
                "role": "member",
                "organization": {"login": org},
                "user": {"login": inner.users[&id], "id": id}
            }),
        ),
        None => not_found(),
    }
}

/// `GET /orgs/{org}/teams/{team}/memberships/{login}`
async fn team_membership(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((org, team, login)): Path<(String, String, String)>,
) -> Response {
    let inner = lock(&shared);
    let (_, scope) = match api_caller(&inner, &headers) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(status) = inner.faults.membership_status {
        return fault_status(status);
    }
    if !has_read_org(&scope) {
        return not_found();
    }
    match inner
        .teams
        .get(&(org.to_lowercase(), team.to_lowercase()))
        .and_then(|m| m.get(&login.to_lowercase()))
    {
        Some(state) => api_json(
            StatusCode::OK,
            json!({
                "url": format!("https://api.github.com/teams/1/memberships/{login}"),
                "role": "member",
                "state": state
            }),
        ),
        None => not_found(),
    }
}

// ---------------------------------------------------------------------
// The application, logging in with the fake.
// ---------------------------------------------------------------------

use crate::helpers::{Browser, TestApp, TestOptions, location, spawn_app_with};
use stackbinder::config::Config;

/// The application in GitHub mode, talking to `fake` (timeouts of 5 s
/// unless `configure` says otherwise).
pub async fn spawn_with_github(
    fake: &FakeGithub,
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    let (authorize, token, api) = (fake.authorize_url(), fake.token_url(), fake.api_url());
    let app = spawn_app_with(TestOptions {
        github_login: true,
        config: Some(Box::new(move |config: &mut Config| {
            config.github.authorize_url = authorize;
            config.github.token_url = token;
            config.github.api_url = api;
            config.github.timeout_seconds = NonZero::new(5).unwrap();
            configure(config);
        })),
        ..TestOptions::default()
    })
    .await;
    assert_eq!(app.config.github.client_id, CLIENT_ID);
    fake.register_callback(&format!("{}/login/callback", app.base));
    app
}

/// GET `path` (which must send the browser on to GitHub, perhaps through
/// `/login`) and return the authorize URL it ends at.
pub async fn authorize_url_from(browser: &Browser, fake: &FakeGithub, path: &str) -> String {
    let mut to = path.to_owned();
    for _ in 0..3 {
        let response = if to.starts_with("http") {
            browser.get_url(&to).await
        } else {
            browser.get(&to).await
        };
        to = location(&response);
        if to.starts_with(&fake.base) {
            return to;
        }
    }
    panic!("{path} does not lead to GitHub (ended at {to})");
}

/// Go through the whole GitHub login from `path` as `login`; returns the
/// app's answer to the callback.
pub async fn github_login_from(
    browser: &Browser,
    fake: &FakeGithub,
    path: &str,
    login: &str,
) -> reqwest::Response {
    let authorize = authorize_url_from(browser, fake, path).await;
    let callback = fake.approve(&authorize, login).await;
    browser.get_url(callback.as_str()).await
}

/// Log in with GitHub as `login` from `/login`; must end on `/`.
pub async fn github_login(browser: &Browser, fake: &FakeGithub, login: &str) -> i64 {
    let response = github_login_from(browser, fake, "/login", login).await;
    let status = response.status();
    let to = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    assert_eq!(
        (status, to.as_deref()),
        (StatusCode::SEE_OTHER, Some("/")),
        "the login of {login} succeeds: {:?}",
        response.text().await
    );
    fake.add_user(login)
}

/// Open the configured registration link and press the button.
pub async fn register(browser: &Browser) {
    let response = browser.register().await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("You are registered"), "{page}");
}

/// Whether the browser is logged in, by what `/api/vm` says.
pub async fn is_logged_in(browser: &Browser) -> bool {
    browser.api_vm().await.status() != StatusCode::UNAUTHORIZED
}

// ---------------------------------------------------------------------
// The fake itself behaves like GitHub (else the tests above prove little).
// ---------------------------------------------------------------------

#[cfg(test)]
mod behaves_like_github {
    use super::*;

    const CALLBACK: &str = "http://127.0.0.1:9/login/callback";
    const VERIFIER: &str = "a-pkce-verifier-of-at-least-43-characters-long-xyz";

    fn challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    /// An authorize URL as an OAuth client builds it.
    fn authorize_url(fake: &FakeGithub, redirect_uri: &str, scope: Option<&str>) -> String {
        let mut url = fake.authorize_url();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", CLIENT_ID)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", "the-state")
                .append_pair("code_challenge", &challenge(VERIFIER))
                .append_pair("code_challenge_method", "S256");
            if let Some(scope) = scope {
                q.append_pair("scope", scope);
            }
        }
        url.to_string()
    }

    async fn code_for(fake: &FakeGithub, login: &str, scope: Option<&str>) -> String {
        let back = fake
            .approve(&authorize_url(fake, CALLBACK, scope), login)
            .await;
        let pairs: HashMap<_, _> = back.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "the-state");
        assert_eq!(back.as_str().split('?').next(), Some(CALLBACK));
        pairs["code"].clone()
    }

    async fn exchange(
        fake: &FakeGithub,
        fields: &[(&str, &str)],
        json: bool,
    ) -> (StatusCode, String, String) {
        let mut request = reqwest::Client::new().post(fake.token_url()).form(fields);
        if json {
            request = request.header("accept", "application/json");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, content_type, response.text().await.unwrap())
    }

    fn fields<'a>(code: &'a str, verifier: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("grant_type", "authorization_code"),
        ]
    }

    fn error_of(body: &str) -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v["error"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn token_answers_are_form_encoded_unless_json_is_asked_for() {
        let fake = FakeGithub::start().await;
        let code = code_for(&fake, "plain", None).await;
        let (status, content_type, body) =
            exchange(&fake, &fields(&code, VERIFIER, CALLBACK), false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/x-www-form-urlencoded"));
        let answer: HashMap<_, _> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert!(answer["access_token"].starts_with("gho_"), "{body}");
        assert_eq!(answer["token_type"], "bearer");

        let code = code_for(&fake, "plain", None).await;
        let (status, content_type, body) =
            exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/json"));
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert!(answer["access_token"].as_str().unwrap().starts_with("gho_"));
        assert_eq!(answer["scope"], "");
    }

    #[tokio::test]
    async fn codes_are_single_use_bound_to_the_redirect_and_the_pkce_challenge() {
        let fake = FakeGithub::start().await;
        // Used twice.
        let code = code_for(&fake, "twice", None).await;
        let (_, _, first) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        assert_eq!(error_of(&first), "");
        let (status, _, again) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        assert_eq!(status, StatusCode::OK, "GitHub says 200 even for errors");
        assert_eq!(error_of(&again), "bad_verification_code");
        assert!(again.contains("The code passed is incorrect or expired."));

        // Another redirect_uri, a wrong verifier, no verifier, a made-up code.
        let wrong_verifier = "another-verifier-that-is-long-enough-to-be-valid-1234";
        for (verifier, redirect) in [
            (VERIFIER, "http://127.0.0.1:9/elsewhere"),
            (wrong_verifier, CALLBACK),
            ("", CALLBACK),
        ] {
            let code = code_for(&fake, "binder", None).await;
            let (_, _, body) = exchange(&fake, &fields(&code, verifier, redirect), true).await;
            assert_eq!(
                error_of(&body),
                "bad_verification_code",
                "{verifier} {redirect}"
            );
            // A failed attempt uses the code up too.
            let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
            assert_eq!(error_of(&body), "bad_verification_code");
        }
        let (_, _, body) = exchange(
            &fake,
            &fields("0123456789abcdef0123", VERIFIER, CALLBACK),
            true,
        )
        .await;
        assert_eq!(error_of(&body), "bad_verification_code");

        // Expired.
        fake.set_code_lifetime(Duration::ZERO);
        let code = code_for(&fake, "late", None).await;
        let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        assert_eq!(error_of(&body), "bad_verification_code");

        // Form-encoded errors when JSON is not asked for.
        let (status, content_type, body) =
            exchange(&fake, &fields("nope", VERIFIER, CALLBACK), false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/x-www-form-urlencoded"));
        assert!(body.starts_with("error=bad_verification_code&"), "{body}");
    }

    #[tokio::test]
    async fn the_client_must_authenticate_in_the_body_or_with_basic_auth() {
        let fake = FakeGithub::start().await;
        let code = code_for(&fake, "client", None).await;
        let mut wrong = fields(&code, VERIFIER, CALLBACK);
        wrong[1] = ("client_secret", "guessed");
        let (_, _, body) = exchange(&fake, &wrong, true).await;
        assert_eq!(error_of(&body), "incorrect_client_credentials");

        let code = code_for(&fake, "client", None).await;
        let body_fields: Vec<_> = fields(&code, VERIFIER, CALLBACK)
            .into_iter()
            .skip(2)
            .collect();
        let response = reqwest::Client::new()
            .post(fake.token_url())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("accept", "application/json")
            .form(&body_fields)
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        assert!(answer["access_token"].is_string(), "{answer}");
    }

    #[tokio::test]
    async fn the_authorize_page_keeps_to_the_registered_callback() {
        let fake = FakeGithub::start().await;
        fake.register_callback(CALLBACK);
        fake.add_user("visitor");
        let response = github_browser()
            .get(authorize_url(&fake, "https://evil.example/steal", None))
            .header(SIGNED_IN_AS, "visitor")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "no redirect elsewhere");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("redirect_uri MUST match")
        );

        let denied = fake
            .deny(&authorize_url(&fake, CALLBACK, None), "visitor")
            .await;
        let pairs: HashMap<_, _> = denied.query_pairs().into_owned().collect();
        assert_eq!(pairs["error"], "access_denied");
        assert_eq!(pairs["state"], "the-state");
        assert!(!pairs.contains_key("code"));
        let recorded = fake.authorize_requests();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded[1].query_pairs()["code_challenge_method"], "S256");
    }

    #[tokio::test]
    async fn the_api_wants_a_user_agent_and_a_good_token() {
        let fake = FakeGithub::start().await;
        let id = fake.add_user("api-user");
        let code = code_for(&fake, "api-user", Some("read:org")).await;
        let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["scope"], "read:org");
        let token = answer["access_token"].as_str().unwrap().to_owned();
        let user_url = format!("{}/user", fake.api_url());

        // reqwest sends no User-Agent unless told to.
        let response = reqwest::Client::new()
            .get(&user_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("User-Agent header"));

        let client = reqwest::Client::builder()
            .user_agent("fake-test")
            .build()
            .unwrap();
        let response = client
            .get(&user_url)
            .bearer_auth("gho_unknown")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Bad credentials");

        let response = client
            .get(&user_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["login"], "api-user");
        assert_eq!(body["id"], id);

        // Membership: visible with read:org, 404 when not a member.
        fake.set_org_membership("Some-Org", "api-user", "active");
        let membership = |org: &str| {
            client
                .get(format!("{}/user/memberships/orgs/{org}", fake.api_url()))
                .header("authorization", format!("token {token}"))
                .send()
        };
        let response = membership("some-org").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["state"], "active");
        assert_eq!(
            membership("other-org").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );

        // Without read:org the membership is hidden.
        let code = code_for(&fake, "api-user", None).await;
        let (_, _, body) = exchange(&fake, &fields(&code, VERIFIER, CALLBACK), true).await;
        let plain: Value = serde_json::from_str(&body).unwrap();
        let response = client
            .get(format!("{}/user/memberships/orgs/some-org", fake.api_url()))
            .bearer_auth(plain["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
