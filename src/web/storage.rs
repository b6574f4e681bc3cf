//! `/storage`: the user's home volume (size, when it was last attached)
//! and its deletion, confirmed by typing their login (`POST /storage`,
//! with the session's CSRF token).

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfProtected, RegisteredUser};
use super::storage_view::{self, StorageView};
use super::{AppState, WebError};
use crate::provision::StorageError;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/storage", get(page).post(delete))
}

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    layout: Layout,
    /// Whether this server gives users storage at all.
    enabled: bool,
    storage: Option<StorageView>,
    /// Said after a deletion.
    notice: Option<String>,
    error: Option<String>,
}

async fn show(
    state: &AppState,
    user: &RegisteredUser,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = render(StoragePage {
        layout: user.visitor.layout(state, "Your storage"),
        enabled: state.config.storage.home_volume_gb().is_some(),
        storage: storage_view::load(state, user.user.github_id).await?,
        notice,
        error,
    })?;
    Ok((status, page).into_response())
}

async fn page(State(state): State<AppState>, user: RegisteredUser) -> Result<Response, WebError> {
    show(&state, &user, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    csrf: String,
    /// The owner's login, typed to confirm (here and on /admin).
    pub(super) confirm: String,
}

impl CsrfProtected for DeleteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn delete(
    State(state): State<AppState>,
    user: RegisteredUser,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, WebError> {
    let login = user.user.login.as_str();
    // GitHub logins are case-insensitive.
    if !form.confirm.trim().eq_ignore_ascii_case(login) {
        let error = format!("type your login, {login}, to confirm the deletion");
        return show(&state, &user, None, Some(error)).await;
    }
    match state.provisioner.delete_storage(user.user.github_id).await {
        Ok(gone) => {
            let notice = format!(
                "Your storage ({} GB) and everything in it are deleted.",
                gone.size_gb
            );
            show(&state, &user, Some(notice), None).await
        }
        Err(
            e @ (StorageError::NoStorage
            | StorageError::VmUsesIt
            | StorageError::StillDetaching
            | StorageError::NotOurs(_)),
        ) => show(&state, &user, None, Some(e.to_string())).await,
        Err(StorageError::Cloud(e)) => {
            show(
                &state,
                &user,
                None,
                Some(format!("the cloud failed: {e}; try again later")),
            )
            .await
        }
        Err(StorageError::Store(e)) => Err(e.into()),
    }
}
