//! Admin: every VM, and deleting any, as `/admin` shows and does.

use crate::domain::{VmId, VmState};
use crate::provision::DeleteReason;
use crate::store::VmRecord;
use crate::web::AppState;
use crate::web::api_v1::auth::AdminUser;
use crate::web::api_v1::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(delete))
}

/// A VM as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminVm {
    pub id: String,
    pub owner_id: i64,
    pub owner_login: String,
    pub name: String,
    pub repo: String,
    pub git_ref: String,
    pub url_path: String,
    pub state: VmState,
    pub address: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<VmRecord> for AdminVm {
    fn from(vm: VmRecord) -> Self {
        Self {
            id: vm.id.to_string(),
            owner_id: vm.owner_id.0,
            owner_login: vm.owner_login.to_string(),
            name: vm.name,
            repo: vm.repo.to_string(),
            git_ref: vm.git_ref.to_string(),
            url_path: vm.url_path.to_string(),
            state: vm.state,
            address: vm.address,
            last_error: vm.last_error,
            created_at: vm.created_at,
            ready_at: vm.ready_at,
            expires_at: vm.expires_at,
            deleted_at: vm.deleted_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VmsQuery {
    /// Only the VMs in this state; without it, every VM not deleted.
    state: Option<VmState>,
}

/// Every VM (deleted ones only with `state=deleted`), newest first.
#[utoipa::path(get, path = "/vms", operation_id = "list_vms", tag = "admin", security(("token" = ["admin:*"])),
    params(VmsQuery),
    responses(
        (status = 200, description = "The VMs", body = Vec<AdminVm>),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<VmsQuery>, QueryRejection>,
) -> Result<Json<Vec<AdminVm>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let include_deleted = query.state == Some(VmState::Deleted);
    let vms = state.store.list_vms(include_deleted).await?;
    Ok(Json(
        vms.into_iter()
            .filter(|vm| query.state.is_none_or(|s| vm.state == s))
            .map(AdminVm::from)
            .collect(),
    ))
}

/// Delete any VM, as the admin page's Delete button does.
#[utoipa::path(delete, path = "/vms/{id}", operation_id = "delete_any_vm", tag = "admin", security(("token" = ["admin:*"])),
    params(("id" = String, Path, description = "The VM's id")),
    responses(
        (status = 202, description = "The VM is being deleted (or was already)"),
        (status = 404, description = "No such VM (`no_such_vm`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let no_such_vm = || ApiError::NoSuchVm(id.clone());
    let vm_id: VmId = id.parse().map_err(|_| no_such_vm())?;
    let vm = state.store.vm(vm_id).await?.ok_or_else(no_such_vm)?;
    let why = format!(
        "deleted by the admin {} through the API",
        admin.0.user.login
    );
    state
        .provisioner
        .delete(&vm, DeleteReason::Admin, &why)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
