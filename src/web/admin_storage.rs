//! `/admin`'s storage table: every user's home volume (owner, size, used
//! space, last attachment, what becomes of it) and its deletion, confirmed
//! by typing the owner's login (`POST /admin/storage/{login}/delete`, with
//! the session's CSRF token), through the rules of "delete my storage".

use super::admin::Admin;
use super::session::CsrfForm;
use super::storage::DeleteForm;
use super::storage_view::human_bytes;
use super::{AppState, WebError};
use crate::domain::{GithubId, Login};
use crate::provision::StorageError;
use crate::store::StoreError;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use std::collections::HashSet;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/storage/{login}/delete", post(delete))
}

/// One home volume as the admin page lists it.
pub struct StorageRow {
    pub login: String,
    pub volume_id: String,
    pub size_gb: i64,
    pub used: String,
    pub last_attached: String,
    /// "in use by a VM", "kept", "deleted after 2026-12-09", ...
    pub status: String,
}

/// Every home volume, by owner.
pub async fn rows(state: &AppState) -> Result<Vec<StorageRow>, StoreError> {
    let volumes = state.store.home_volumes().await?;
    let with_vm: HashSet<GithubId> = state
        .store
        .live_vms()
        .await?
        .into_iter()
        .map(|vm| vm.owner_id)
        .collect();
    let retention = state.config.storage.retention();
    Ok(volumes
        .into_iter()
        .map(|v| {
            let h = &v.volume;
            let status = if with_vm.contains(&h.github_id) {
                "in use by a VM".to_owned()
            } else if v.purge_pending() {
                "deleted at the next clean-up (owner revoked with purge)".to_owned()
            } else {
                match h.deleted_after(retention) {
                    Some(t) => format!("kept until {}", t.format("%Y-%m-%d")),
                    None => "kept".to_owned(),
                }
            };
            StorageRow {
                login: v.login.to_string(),
                volume_id: h.volume_id.clone(),
                size_gb: h.size_gb,
                used: h.used_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
                last_attached: h
                    .last_attached_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into()),
                status,
            }
        })
        .collect())
}

async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(login): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, WebError> {
    let login = Login::parse(&login).map_err(|_| WebError::NotFound)?;
    if !form.confirm.trim().eq_ignore_ascii_case(login.as_str()) {
        return Err(WebError::BadRequest(format!(
            "type the owner's login, {login}, to confirm the deletion of their storage"
        )));
    }
    let user = state
        .store
        .user_by_login(&login)
        .await?
        .ok_or(WebError::NotFound)?;
    match state.provisioner.delete_storage(user.github_id).await {
        Ok(gone) => {
            tracing::info!(user = %login, volume = %gone.volume_id, admin = %admin.login(), "storage deleted by an admin");
            Ok(Redirect::to("/admin").into_response())
        }
        Err(StorageError::Store(e)) => Err(e.into()),
        Err(e @ StorageError::NoStorage) => Err(WebError::BadRequest(e.to_string())),
        Err(StorageError::Cloud(e)) => Err(WebError::Conflict(format!(
            "the cloud failed: {e}; try again later"
        ))),
        // Said to the user as "your"; the admin reads the same rule.
        Err(e) => Err(WebError::Conflict(format!("the storage of {login}: {e}"))),
    }
}
