//! `/tokens`: personal access tokens for `/api/v1`. A new token is shown
//! once, on the page that made it; only its hash is stored.

use super::api_v1::scope::{Scope, Scopes};
use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, CsrfProtected, RegisteredUser};
use super::{AppState, WebError};
use crate::access::Action;
use crate::secret;
use crate::store::{ApiToken, NewToken};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(page).post(create))
        .route("/tokens/{id}/revoke", post(revoke))
}

/// Tokens carry a prefix so a leaked one is recognisable (secret scanners).
const PREFIX: &str = "sbt_";
const MAX_DAYS: u32 = 366;

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<ApiToken>,
    /// The token just made, shown this once.
    new_token: Option<String>,
    error: Option<String>,
}

async fn show(
    state: &AppState,
    user: &RegisteredUser,
    new_token: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let tokens = state.store.tokens_of(user.user.github_id).await?;
    Ok(render(TokensPage {
        layout: user.visitor.layout(state, "API tokens"),
        tokens,
        new_token,
        error,
    })?
    .into_response())
}

async fn page(State(state): State<AppState>, user: RegisteredUser) -> Result<Response, WebError> {
    show(&state, &user, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    csrf: String,
    label: String,
    days: u32,
    vm_read: Option<String>,
    vm_launch: Option<String>,
    vm_delete: Option<String>,
    admin: Option<String>,
}

impl CsrfProtected for NewTokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn create(
    State(state): State<AppState>,
    user: RegisteredUser,
    CsrfForm(form): CsrfForm<NewTokenForm>,
) -> Result<Response, WebError> {
    let chosen = [
        (form.vm_read.is_some(), Scope::VmRead),
        (form.vm_launch.is_some(), Scope::VmLaunch),
        (form.vm_delete.is_some(), Scope::VmDelete),
        (form.admin.is_some(), Scope::Admin),
    ];
    let scopes = Scopes::from_iter(chosen.into_iter().filter(|(on, _)| *on).map(|(_, s)| s));
    let label = form.label.trim();
    let error = if label.is_empty() || label.len() > 100 {
        Some("A label of 1 to 100 characters is needed.")
    } else if scopes.is_empty() {
        Some("Choose at least one scope.")
    } else if form.days == 0 || form.days > MAX_DAYS {
        Some("The expiry must be 1 to 366 days.")
    } else if scopes.allows(Scope::Admin) && !may_administer(&state, &user) {
        Some("Only an admin may make an admin:* token.")
    } else {
        None
    };
    if let Some(error) = error {
        return show(&state, &user, None, Some(error.into())).await;
    }
    let token = format!("{PREFIX}{}", secret::generate());
    state
        .store
        .create_token(NewToken {
            github_id: user.user.github_id,
            label,
            secret_hash: &secret::hash(&token),
            scopes: &scopes.stored(),
            expires_at: Utc::now() + Duration::days(i64::from(form.days)),
        })
        .await?;
    show(&state, &user, Some(token), None).await
}

/// Whether `user` may make `admin:*` tokens: whoever may use `/admin`.
fn may_administer(state: &AppState, user: &RegisteredUser) -> bool {
    state
        .access
        .check(&user.user, Action::Administer { org_access: false })
        .is_ok()
}

async fn revoke(
    State(state): State<AppState>,
    user: RegisteredUser,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    state.store.revoke_token(user.user.github_id, id).await?;
    Ok(Redirect::to("/tokens").into_response())
}
