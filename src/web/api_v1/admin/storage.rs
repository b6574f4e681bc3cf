//! Admin: every user's home volume, and deleting one, through the same
//! rules as the user's own "delete my storage" (`/admin` and `storage
//! list|delete` do the same).

use crate::domain::Login;
use crate::provision::StorageError;
use crate::store::HomeVolumeOfUser;
use crate::web::AppState;
use crate::web::api_v1::auth::AdminUser;
use crate::web::api_v1::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(delete))
}

/// A user's home volume.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageView {
    pub login: String,
    pub github_id: i64,
    pub volume_id: String,
    pub size_gb: i64,
    pub availability_zone: Option<String>,
    /// Bytes used as the VM last reported them, and when.
    pub used_bytes: Option<i64>,
    pub usage_reported_at: Option<DateTime<Utc>>,
    pub last_attached_at: Option<DateTime<Utc>>,
    /// When `storage.retention_days` deletes it if it stays unused.
    pub deleted_after: Option<DateTime<Utc>>,
}

impl StorageView {
    pub fn new(v: HomeVolumeOfUser, retention: Option<chrono::Duration>) -> Self {
        let deleted_after = v.volume.deleted_after(retention);
        Self {
            login: v.login.to_string(),
            github_id: v.volume.github_id.0,
            volume_id: v.volume.volume_id,
            size_gb: v.volume.size_gb,
            availability_zone: v.volume.availability_zone,
            used_bytes: v.volume.used_bytes,
            usage_reported_at: v.volume.usage_reported_at,
            last_attached_at: v.volume.last_attached_at,
            deleted_after,
        }
    }
}

/// Every user's home volume, by login.
#[utoipa::path(get, path = "/storage", operation_id = "list_storage", tag = "admin", security(("token" = ["admin:*"])),
    responses(
        (status = 200, description = "The home volumes", body = Vec<StorageView>),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<StorageView>>, ApiError> {
    let retention = state.config.storage.retention();
    let volumes = state.store.home_volumes().await?;
    Ok(Json(
        volumes
            .into_iter()
            .map(|v| StorageView::new(v, retention))
            .collect(),
    ))
}

/// What an admin's deletion of a user's storage means to the API.
pub fn storage_error(login: &Login, e: StorageError) -> ApiError {
    match e {
        StorageError::NoStorage => ApiError::NoSuchStorage(login.to_string()),
        StorageError::VmUsesIt | StorageError::StillDetaching | StorageError::NotOurs(_) => {
            ApiError::StorageInUse(e.to_string())
        }
        StorageError::Store(e) => e.into(),
        StorageError::Cloud(e) => ApiError::Internal(e.into()),
    }
}

/// Delete a user's home volume and everything on it (refused while they
/// have a VM).
#[utoipa::path(delete, path = "/storage/{login}", operation_id = "delete_storage", tag = "admin",
    security(("token" = ["admin:*"])),
    params(("login" = String, Path, description = "The owner's GitHub login")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user or no storage (`no_such_storage`)", body = ErrorBody),
        (status = 409, description = "A VM uses it, or it is not this installation's (`storage_in_use`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(login): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let no_storage = || ApiError::NoSuchStorage(login.clone());
    let login = Login::parse(&login).map_err(|_| no_storage())?;
    let user = state
        .store
        .user_by_login(&login)
        .await?
        .ok_or_else(no_storage)?;
    let gone = state
        .provisioner
        .delete_storage(user.github_id)
        .await
        .map_err(|e| storage_error(&login, e))?;
    tracing::info!(user = %login, volume = %gone.volume_id, admin = %admin.0.user.login, "storage deleted by an admin");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
