//! The one error type of the web layer, turned into a page a person can
//! act on. Internal causes are logged, never shown.

use super::layout::Layout;
use askama::Template;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 404: also what a wrong registration secret gets, so it reveals nothing.
    #[error("not found")]
    NotFound,
    /// 400 with a message for the user (a bad repository URL, ...).
    #[error("{0}")]
    BadRequest(String),
    /// 303 to the login page, coming back to `next` afterwards.
    #[error("login required")]
    LoginRequired { next: String },
    /// 403: logged in but not on the allowlist.
    #[error("not registered")]
    NotRegistered { login: String },
    /// 400: the GitHub round trip failed; the page offers to try again.
    #[error("login failed: {0}")]
    LoginFailed(String),
    /// 403: on `registration.blocked_users`.
    #[error("blocked")]
    Blocked,
    /// 403: their access was revoked; a registration link does not undo that.
    #[error("access withdrawn")]
    AccessWithdrawn,
    /// 410: a registration link that expired or was used up.
    #[error("registration link inactive")]
    LinkInactive(&'static str),
    /// 429: too many wrong guesses from this client.
    #[error("too many requests")]
    TooManyRequests { retry_after: u64 },
    /// 403: a POST without a valid CSRF token.
    #[error("invalid or missing CSRF token")]
    Csrf,
    /// 401 for a VM callback with a wrong secret.
    #[error("unauthorized")]
    Unauthorized,
    /// 409: the request does not fit the VM's state.
    #[error("{0}")]
    Conflict(String),
    /// 500: logged with its cause; the user sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the provisioner refuses in a way a user can act on (a paused
/// server, a banned repository) the launch page says itself; anything
/// that reaches a handler's `?` is a failure on our side.
impl From<crate::provision::ProvisionError> for WebError {
    fn from(e: crate::provision::ProvisionError) -> Self {
        Self::Internal(e.into())
    }
}

/// A refusal of the access rules, as the page that says why; 404 for
/// `/admin` to whoever is not an admin, so it does not exist for them.
impl From<crate::access::AccessError> for WebError {
    fn from(e: crate::access::AccessError) -> Self {
        use crate::access::{AccessError, Refusal};
        match e {
            AccessError::Refused { login, why } => match why {
                Refusal::Blocked => Self::Blocked,
                Refusal::Withdrawn => Self::AccessWithdrawn,
                Refusal::NotRegistered => Self::NotRegistered {
                    login: login.to_string(),
                },
                Refusal::NotAdmin => Self::NotFound,
            },
            AccessError::LinkRanOut => Self::LinkInactive("has just run out"),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<tower_sessions::session::Error> for WebError {
    fn from(e: tower_sessions::session::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    heading: &'a str,
    message: &'a str,
    retry_login: bool,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::LoginFailed(_) => StatusCode::BAD_REQUEST,
            Self::LoginRequired { .. } => StatusCode::SEE_OTHER,
            Self::NotRegistered { .. } | Self::Csrf | Self::Blocked | Self::AccessWithdrawn => {
                StatusCode::FORBIDDEN
            }
            Self::LinkInactive(_) => StatusCode::GONE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn public_message(&self) -> (&str, String) {
        match self {
            Self::NotFound => ("Not found", "There is nothing at this address.".into()),
            Self::BadRequest(m) => ("That did not work", m.clone()),
            Self::LoginRequired { .. } => ("Please log in", "You need to log in first.".into()),
            Self::LoginFailed(m) => ("Login did not work", m.clone()),
            Self::NotRegistered { login } => (
                "You are not registered yet",
                format!(
                    "You are logged in as {login}, but this server only launches VMs for registered users. \
                     Ask your teacher or group lead for the registration link, open it, and come back."
                ),
            ),
            Self::Csrf => (
                "This form has expired",
                "The page you sent it from is too old or came from elsewhere. Go back, reload the page and try again."
                    .into(),
            ),
            Self::Unauthorized => ("Unauthorized", "Wrong or missing credentials.".into()),
            Self::Blocked => (
                "Not allowed",
                "This GitHub account may not use this server. Ask its operator if you think this is a mistake."
                    .into(),
            ),
            Self::AccessWithdrawn => (
                "Your access was withdrawn",
                "Your access to this server was withdrawn, so a registration link does not let you in again. \
                 Ask the course staff if you think you should have it back."
                    .into(),
            ),
            Self::LinkInactive(why) => (
                "This registration link no longer works",
                format!("The link {why}. Ask your teacher or group lead for a new one."),
            ),
            Self::TooManyRequests { retry_after } => (
                "Too many attempts",
                format!(
                    "Too many wrong registration links came from your address. Try again in {} minute(s).",
                    retry_after.div_ceil(60)
                ),
            ),
            Self::Conflict(m) => ("Not now", m.clone()),
            Self::Internal(_) => (
                "Something went wrong",
                "Something went wrong on our side. It has been logged; please try again in a minute.".into(),
            ),
        }
    }

    /// The same error for a JSON API caller.
    pub fn into_json(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let status = match self {
            Self::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            ref other => other.status(),
        };
        let (_, message) = self.public_message();
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        if let Self::LoginRequired { next } = &self {
            let target = format!(
                "/login?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish()
            );
            return Redirect::to(&target).into_response();
        }
        let status = self.status();
        let retry_after = match &self {
            Self::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        };
        let (heading, message) = self.public_message();
        let page = ErrorPage {
            layout: Layout::bare(heading),
            heading,
            message: &message,
            retry_login: matches!(self, Self::LoginFailed(_)),
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                (status, [(header::CONTENT_TYPE, "text/plain")], message).into_response()
            }
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
