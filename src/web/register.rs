//! `/register/{secret}`: the registration link puts its visitor on the
//! allowlist. GET shows the invitation; the POST (with CSRF) registers,
//! so a link prefetched by a mail scanner registers nobody.

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, Visitor};
use super::{AppState, WebError};
use crate::secret;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;

pub fn router() -> Router<AppState> {
    Router::new().route("/register/{secret}", get(invitation).post(register))
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    /// The form posts back to the same path; the secret is not rendered.
    registered: bool,
    just_registered: bool,
    default_repo: String,
    launch_base: String,
}

pub(super) fn launch_base(state: &AppState) -> String {
    state
        .config
        .server
        .public_url
        .join("VM_start")
        .expect("a relative path joins")
        .to_string()
}

/// Constant-time check of the secret in the path; a wrong one is a 404.
fn check_secret(state: &AppState, presented: &str) -> Result<(), WebError> {
    let Some(expected) = &state.registration_secret else {
        return Err(WebError::NotFound);
    };
    if secret::equal(expected.expose_secret().as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}

async fn invitation(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(presented): Path<String>,
) -> Result<Response, WebError> {
    check_secret(&state, &presented)?;
    let Some(user) = &visitor.user else {
        return Err(WebError::LoginRequired {
            next: format!("/register/{presented}"),
        });
    };
    Ok(render(RegisterPage {
        layout: visitor.layout(&state, "Register"),
        registered: user.is_registered(),
        just_registered: false,
        default_repo: state.config.launch.default_repo.to_string(),
        launch_base: launch_base(&state),
    })?
    .into_response())
}

async fn register(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(presented): Path<String>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    check_secret(&state, &presented)?;
    let Some(user) = &visitor.user else {
        return Err(WebError::LoginRequired {
            next: format!("/register/{presented}"),
        });
    };
    let newly = state
        .store
        .register(user.github_id, "registration link")
        .await?;
    if newly {
        tracing::info!(user = %user.login, "registered through the registration link");
    }
    Ok(render(RegisterPage {
        layout: visitor.layout(&state, "Registered"),
        registered: true,
        just_registered: newly,
        default_repo: state.config.launch.default_repo.to_string(),
        launch_base: launch_base(&state),
    })?
    .into_response())
}
