//! Sessions, who is asking, and CSRF. Handlers never touch session keys:
//! they take a `Visitor`, a `RegisteredUser` or a `CsrfForm`.

use super::layout::Layout;
use super::session_store::SessionRows;
use super::{AppState, WebError};
use crate::access::{Action, AllowedBy};
use crate::domain::GithubId;
use crate::secret;
use crate::store::User;
use axum::extract::{Form, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

pub const SESSION_COOKIE: &str = "stackbinder_session";
const AUTH_KEY: &str = "auth.user";
const CSRF_KEY: &str = "csrf.token";
const NEXT_KEY: &str = "auth.next";
const OAUTH_KEY: &str = "oauth.pending";
/// Set at login when membership of `registration.allowed_orgs` let the user
/// in; with the GitHub token to check it again before each launch.
const ORG_ACCESS_KEY: &str = "auth.org_access";
/// When the session's idle expiry was last pushed back (Unix seconds).
const RENEWED_KEY: &str = "session.renewed_at";
/// A session in use is written at most this often just to push its idle
/// expiry back (a changed one is written whenever it changes).
const RENEW_EVERY_SECONDS: i64 = 60;

#[derive(Clone, Serialize, Deserialize)]
pub struct OrgAccess {
    pub github_token: String,
}

/// What the GitHub callback must match: the `state` we sent and the PKCE
/// verifier of the challenge we sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingOauth {
    pub state: String,
    pub pkce_verifier: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionAuth {
    github_id: GithubId,
    login_at: DateTime<Utc>,
}

/// Sessions in the store's database, saved only when they changed (`keep_alive` makes
/// the change that pushes an idle expiry back), and never created for a
/// visitor who has nothing stored: an anonymous `GET /` writes nothing.
pub fn layer(state: &AppState) -> SessionManagerLayer<SessionRows> {
    let store = SessionRows::new(&state.store);
    let secure = state.config.server.public_url.scheme() == "https";
    let idle = i64::from(state.config.server.session_idle_minutes.get());
    SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        // Lax, so the cookie comes along on the redirect back from GitHub.
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(CookieDuration::minutes(idle)))
}

/// Push back the idle expiry of a session in use. A session is saved (and
/// so its expiry and the cookie's Max-Age renewed) only when it changed;
/// this changes it when its last renewal is `RENEW_EVERY_SECONDS` old, so
/// an active user stays logged in at the cost of one write a minute, not
/// one per request. Runs inside the session layer, before the handler.
pub async fn keep_alive(session: Session, request: Request, next: Next) -> Response {
    keep_alive_session(&session).await;
    next.run(request).await
}

/// `keep_alive` for a handler that is not under it (the proxy, which
/// reads the session only when it checks it again).
pub async fn keep_alive_session(session: &Session) {
    if let Err(e) = renew_if_due(session).await {
        tracing::warn!(error = %e, "cannot renew the session");
    }
}

async fn renew_if_due(session: &Session) -> Result<(), tower_sessions::session::Error> {
    // No cookie, an expired one, or nothing stored: nothing to keep alive.
    if session.is_empty().await {
        return Ok(());
    }
    let now = Utc::now().timestamp();
    let renewed: Option<i64> = session.get(RENEWED_KEY).await?;
    if renewed.is_none_or(|at| now - at >= RENEW_EVERY_SECONDS) {
        session.insert(RENEWED_KEY, now).await?;
    }
    Ok(())
}

/// Whoever sent the request: maybe logged in. A logged-in visitor always
/// has a CSRF token; an anonymous one only once a page with a form made
/// one (`ensure_csrf`), so that an anonymous visit stores no session.
pub struct Visitor {
    pub session: Session,
    pub user: Option<User>,
    csrf: Option<String>,
}

impl Visitor {
    pub fn layout(&self, state: &AppState, title: &str) -> Layout {
        let config = &state.config;
        let paused =
            (config.cloud.max_vms == Some(0)).then_some("Launches are paused for maintenance.");
        let banner = match (config.server.banner.as_deref(), paused) {
            (Some(b), Some(p)) => Some(format!("{p} {b}")),
            (Some(b), None) => Some(b.to_owned()),
            (None, p) => p.map(str::to_owned),
        };
        Layout {
            title: title.to_owned(),
            login: self.user.as_ref().map(|u| u.login.to_string()),
            csrf: self.csrf.clone().unwrap_or_default(),
            banner,
            is_admin: self
                .user
                .as_ref()
                .is_some_and(|u| state.access.is_admin(u.github_id)),
        }
    }

    /// Log `user` in: a new session id (no fixation), a new CSRF token.
    pub async fn log_in(&self, user: &User) -> Result<(), WebError> {
        self.session.cycle_id().await?;
        self.session
            .insert(
                AUTH_KEY,
                SessionAuth {
                    github_id: user.github_id,
                    login_at: Utc::now(),
                },
            )
            .await?;
        self.session.insert(CSRF_KEY, secret::generate()).await?;
        self.session
            .insert(RENEWED_KEY, Utc::now().timestamp())
            .await?;
        Ok(())
    }

    /// A CSRF token for a page with a form, made now if the visitor has
    /// none (which starts a session).
    pub async fn ensure_csrf(&mut self) -> Result<(), WebError> {
        if self.csrf.is_none() {
            let token = secret::generate();
            self.session.insert(CSRF_KEY, &token).await?;
            self.csrf = Some(token);
        }
        Ok(())
    }

    pub async fn grant_org_access(&self, access: OrgAccess) -> Result<(), WebError> {
        self.session.insert(ORG_ACCESS_KEY, access).await?;
        Ok(())
    }

    pub async fn org_access(&self) -> Result<Option<OrgAccess>, WebError> {
        Ok(self.session.get(ORG_ACCESS_KEY).await?)
    }

    pub async fn revoke_org_access(&self) -> Result<(), WebError> {
        self.session.remove::<OrgAccess>(ORG_ACCESS_KEY).await?;
        Ok(())
    }

    pub async fn log_out(&self) -> Result<(), WebError> {
        self.session.flush().await?;
        Ok(())
    }

    /// Remember where to go after login (only paths on this site).
    pub async fn set_next(&self, next: &str) -> Result<(), WebError> {
        self.session.insert(NEXT_KEY, safe_next(next)).await?;
        Ok(())
    }

    pub async fn begin_oauth(&self, pending: PendingOauth) -> Result<(), WebError> {
        self.session.insert(OAUTH_KEY, pending).await?;
        Ok(())
    }

    /// The pending login, at most once: a replayed callback finds nothing.
    pub async fn take_oauth(&self) -> Result<Option<PendingOauth>, WebError> {
        Ok(self.session.remove(OAUTH_KEY).await?)
    }

    pub async fn take_next(&self) -> Result<String, WebError> {
        let next: Option<String> = self.session.remove(NEXT_KEY).await?;
        Ok(next.map_or_else(|| "/".to_owned(), |n| safe_next(&n)))
    }
}

/// A local path, or `/`: never another host (`//evil`, `https://…`, `/\evil`).
pub fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

impl<S> FromRequestParts<S> for Visitor
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| WebError::Internal(anyhow::anyhow!(msg)))?;
        let mut user = None;
        if let Some(auth) = session.get::<SessionAuth>(AUTH_KEY).await? {
            let max_age = Duration::hours(i64::from(app.config.server.session_max_hours.get()));
            if Utc::now() - auth.login_at > max_age {
                session.flush().await?;
            } else {
                user = app.store.user(auth.github_id).await?;
            }
        }
        let csrf = session.get::<String>(CSRF_KEY).await?;
        let mut visitor = Self {
            session,
            user,
            csrf,
        };
        if visitor.user.is_some() {
            visitor.ensure_csrf().await?;
        }
        Ok(visitor)
    }
}

/// A logged-in user who may use this server, checked on every request
/// (removing someone takes effect at once, not at their next login).
pub struct RegisteredUser {
    pub user: User,
    pub visitor: Visitor,
    pub allowed_by: AllowedBy,
}

impl RegisteredUser {
    /// The logged-in visitor, if the access rules let them do the action
    /// that `action` makes of the session's organization access.
    pub(super) async fn allowed_to<S>(
        parts: &mut Parts,
        state: &S,
        action: fn(bool) -> Action,
    ) -> Result<Self, WebError>
    where
        S: Send + Sync,
        AppState: FromRef<S>,
    {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let Some(user) = visitor.user.clone() else {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            return Err(WebError::LoginRequired { next });
        };
        let org_access = visitor.org_access().await?.is_some();
        let allowed_by = AppState::from_ref(state)
            .access
            .check(&user, action(org_access))?;
        Ok(Self {
            user,
            visitor,
            allowed_by,
        })
    }
}

impl<S> FromRequestParts<S> for RegisteredUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::allowed_to(parts, state, |org_access| Action::Use { org_access }).await
    }
}

/// `RegisteredUser` for JSON endpoints: failures answer in JSON.
pub struct ApiUser(pub RegisteredUser);

impl<S> FromRequestParts<S> for ApiUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        RegisteredUser::from_request_parts(parts, state)
            .await
            .map(Self)
            .map_err(WebError::into_json)
    }
}

/// A form that carries the session's CSRF token in its `csrf` field.
pub trait CsrfProtected {
    fn csrf(&self) -> &str;
}

/// A form, accepted only with the session's CSRF token.
pub struct CsrfForm<T>(pub T);

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: DeserializeOwned + CsrfProtected + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state)
            .await
            .map_err(|(_, msg)| WebError::Internal(anyhow::anyhow!(msg)).into_response())?;
        let expected: Option<String> = session
            .get(CSRF_KEY)
            .await
            .map_err(|e| WebError::from(e).into_response())?;
        let req = Request::from_parts(parts, body);
        let Form(form) = Form::<T>::from_request(req, state).await.map_err(|_| {
            // A form without its token fails to parse; that is a CSRF failure too.
            WebError::Csrf.into_response()
        })?;
        let valid = expected.is_some_and(|e| secret::equal(e.as_bytes(), form.csrf().as_bytes()));
        if !valid {
            return Err(WebError::Csrf.into_response());
        }
        Ok(Self(form))
    }
}

/// A form with nothing but its CSRF token (logout, delete).
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    pub csrf: String,
}

impl CsrfProtected for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next("/VM_start?giturl=https%3A%2F%2Fx"),
            "/VM_start?giturl=https%3A%2F%2Fx"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "/x\r\nSet-Cookie: a",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
