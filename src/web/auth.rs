//! Logging in and out. `serve` logs in with GitHub; `demo` with a form that
//! takes any name and exists only there.

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, CsrfProtected, OrgAccess, PendingOauth, Visitor};
use super::{AppState, LoginMode, WebError};
use crate::access::AccessError;
use crate::domain::{GithubId, Login};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login))
        .route("/login/demo", post(demo_login))
        .route("/login/callback", get(github_callback))
        .route("/logout", post(logout))
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct DemoLoginPage {
    layout: Layout,
    next: String,
    error: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    mut visitor: Visitor,
    Query(q): Query<NextQuery>,
) -> Result<Response, WebError> {
    let next = super::session::safe_next(q.next.as_deref().unwrap_or("/"));
    if visitor.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    match &state.login_mode {
        LoginMode::Demo => {
            visitor.ensure_csrf().await?;
            Ok(render(DemoLoginPage {
                layout: visitor.layout(&state, "Log in"),
                next,
                error: None,
            })?
            .into_response())
        }
        LoginMode::Github(github) => {
            let redirect = github.authorize();
            visitor.set_next(&next).await?;
            visitor
                .begin_oauth(PendingOauth {
                    state: redirect.state,
                    pkce_verifier: redirect.pkce_verifier,
                })
                .await?;
            Ok(Redirect::to(redirect.url.as_str()).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct DemoLoginForm {
    csrf: String,
    login: Option<String>,
    next: Option<String>,
}

impl CsrfProtected for DemoLoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn demo_login(
    State(state): State<AppState>,
    visitor: Visitor,
    CsrfForm(form): CsrfForm<DemoLoginForm>,
) -> Result<Response, WebError> {
    if !matches!(state.login_mode, LoginMode::Demo) {
        return Err(WebError::NotFound);
    }
    let next = super::session::safe_next(form.next.as_deref().unwrap_or("/"));
    let login = match Login::parse(form.login.as_deref().unwrap_or("")) {
        Ok(login) => login,
        Err(problem) => {
            let page = DemoLoginPage {
                layout: visitor.layout(&state, "Log in"),
                next,
                error: Some(format!("Pick another name: {problem}.")),
            };
            return Ok((axum::http::StatusCode::BAD_REQUEST, render(page)?).into_response());
        }
    };
    let user = state
        .access
        .log_in(GithubId::for_demo(&login), &login)
        .await?;
    visitor.log_in(&user).await?;
    tracing::info!(user = %user.login, "demo login");
    Ok(Redirect::to(&next).into_response())
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn github_callback(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, WebError> {
    let LoginMode::Github(github) = &state.login_mode else {
        return Err(WebError::NotFound);
    };
    let pending = visitor.take_oauth().await?;
    if let Some(error) = q.error {
        // Anyone can send a link with any `error` text: it is never shown.
        tracing::warn!(
            code = authorization_error_code(&error),
            "GitHub sent the login back with an error"
        );
        return Err(WebError::LoginFailed(
            authorization_error_message(&error).to_owned(),
        ));
    }
    let (Some(pending), Some(returned_state), Some(code)) = (pending, q.state, q.code) else {
        return Err(WebError::LoginFailed(
            "This login link has expired or was already used. Please start again.".into(),
        ));
    };
    if !crate::secret::equal(pending.state.as_bytes(), returned_state.as_bytes()) {
        tracing::warn!("OAuth state mismatch on the login callback");
        return Err(WebError::LoginFailed(
            "This login did not start here (its state does not match). Please start again.".into(),
        ));
    }
    let identity = github
        .identify(&code, &pending.pkce_verifier)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "GitHub login failed");
            WebError::LoginFailed(e.to_string())
        })?;
    let user = match state.access.log_in(identity.id, &identity.login).await {
        Err(refused @ AccessError::Refused { .. }) => {
            tracing::warn!(user = %identity.login, "blocked user tried to log in");
            return Err(refused.into());
        }
        logged_in => logged_in?,
    };
    // Membership is asked before the session changes: a GitHub failure
    // here must leave nobody logged in.
    let orgs = &state.config.registration.allowed_orgs;
    let member = state.access.asks_membership(&user)
        && github
            .is_member(&identity.token, &identity.login, orgs)
            .await
            .map_err(|e| WebError::LoginFailed(e.to_string()))?;
    let next = visitor.take_next().await?;
    visitor.log_in(&user).await?;
    if member {
        visitor
            .grant_org_access(OrgAccess {
                github_token: identity.token.expose_secret().to_owned(),
            })
            .await?;
    }
    tracing::info!(user = %user.login, "GitHub login");
    Ok(Redirect::to(&next).into_response())
}

/// GitHub's documented authorization errors (and the OAuth 2.0 ones it may
/// send), in our words.
const AUTHORIZATION_ERRORS: &[(&str, &str)] = &[
    (
        "access_denied",
        "You did not allow the login on GitHub. You can try again whenever you like.",
    ),
    (
        "redirect_uri_mismatch",
        "GitHub refused the login: this server's callback URL is not the one registered for \
         its OAuth app. Please tell the operator of this server.",
    ),
    (
        "application_suspended",
        "GitHub refused the login: this server's OAuth app is suspended. Please tell the \
         operator of this server.",
    ),
    (
        "unauthorized_client",
        "GitHub refused the login: this server's OAuth app may not log people in this way. \
         Please tell the operator of this server.",
    ),
    (
        "invalid_scope",
        "GitHub refused the permissions this server asked for. Please tell the operator of \
         this server.",
    ),
    (
        "server_error",
        "GitHub had a problem with the login. Please try again in a minute.",
    ),
    (
        "temporarily_unavailable",
        "GitHub is busy and could not log you in. Please try again in a minute.",
    ),
];

const UNKNOWN_AUTHORIZATION_ERROR: &str = "GitHub did not complete the login. Please start again.";

/// The page's message for an `error` GitHub sent back; anything else that
/// a link may carry gets the generic message, never its own text.
fn authorization_error_message(code: &str) -> &'static str {
    AUTHORIZATION_ERRORS
        .iter()
        .find(|(known, _)| *known == code)
        .map_or(UNKNOWN_AUTHORIZATION_ERROR, |(_, message)| message)
}

/// The code for the log: a known one, or "other" (the log is not a place
/// for attacker text either).
fn authorization_error_code(code: &str) -> &'static str {
    AUTHORIZATION_ERRORS
        .iter()
        .find(|(known, _)| *known == code)
        .map_or("other", |(known, _)| known)
}

async fn logout(visitor: Visitor, CsrfForm(_): CsrfForm<CsrfOnly>) -> Result<Response, WebError> {
    visitor.log_out().await?;
    Ok(Redirect::to("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_documented_authorization_error_has_its_own_message() {
        for (code, message) in AUTHORIZATION_ERRORS {
            assert_eq!(authorization_error_message(code), *message);
            assert_eq!(authorization_error_code(code), *code);
        }
        for other in [
            "",
            "access_denied ",
            "<b>call 555-0100</b>",
            "Access_Denied",
        ] {
            assert_eq!(
                authorization_error_message(other),
                UNKNOWN_AUTHORIZATION_ERROR
            );
            assert_eq!(authorization_error_code(other), "other");
        }
    }
}
