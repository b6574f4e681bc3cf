//! Logging in and out. `serve` logs in with GitHub; `demo` with a form that
//! takes any name and exists only there.

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, CsrfProtected, OrgAccess, PendingOauth, Visitor};
use super::{AppState, LoginMode, WebError};
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
    visitor: Visitor,
    Query(q): Query<NextQuery>,
) -> Result<Response, WebError> {
    let next = super::session::safe_next(q.next.as_deref().unwrap_or("/"));
    if visitor.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    match &state.login_mode {
        LoginMode::Demo => Ok(render(DemoLoginPage {
            layout: visitor.layout(&state, "Log in"),
            next,
            error: None,
        })?
        .into_response()),
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
    if state.config.registration.is_blocked(login.as_str()) {
        return Err(WebError::Blocked);
    }
    let user = state
        .store
        .record_login(GithubId::for_demo(&login), &login)
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
        let message = if error == "access_denied" {
            "You did not allow the login on GitHub. You can try again whenever you like.".to_owned()
        } else {
            format!("GitHub reported a problem with the login ({error}).")
        };
        return Err(WebError::LoginFailed(message));
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
    let registration = &state.config.registration;
    if registration.is_blocked(identity.login.as_str()) {
        tracing::warn!(user = %identity.login, "blocked user tried to log in");
        return Err(WebError::Blocked);
    }
    let user = state
        .store
        .record_login(identity.id, &identity.login)
        .await?;
    // Membership is asked before the session changes: a GitHub failure
    // here must leave nobody logged in.
    let needs_org = !user.is_registered()
        && !registration.is_admin(&user.login)
        && !registration.allowed_orgs.is_empty();
    let member = needs_org
        && github
            .is_member(&identity.token, &identity.login, &registration.allowed_orgs)
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

async fn logout(visitor: Visitor, CsrfForm(_): CsrfForm<CsrfOnly>) -> Result<Response, WebError> {
    visitor.log_out().await?;
    Ok(Redirect::to("/").into_response())
}
