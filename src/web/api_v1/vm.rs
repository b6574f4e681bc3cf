//! The caller's own VM: launch, look, follow, delete. The same use cases
//! as the pages (policy, quotas, one VM per user live in the provisioner).

use super::auth::TokenUser;
use super::error::{ApiError, ErrorBody};
use super::scope::Scope;
use crate::domain::LaunchParams;
use crate::provision::DeleteReason;
use crate::web::AppState;
use crate::web::status::{VmView, changes};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, launch, delete))
        .routes(routes!(events))
}

/// What to launch; strict: unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    repo: String,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    urlpath: Option<String>,
    /// A launch profile by name; unset: the first open to the caller.
    profile: Option<String>,
    /// An interface (`lab`, `notebook`, `rstudio`, `vscode`, `desktop`)
    /// instead of `urlpath`.
    ide: Option<String>,
}

/// The caller's VM.
#[utoipa::path(get, path = "/vm", operation_id = "get_vm", tag = "vm", security(("token" = ["vm:read"])),
    responses(
        (status = 200, description = "The caller's VM", body = VmView),
        (status = 404, description = "The caller has no VM (`no_vm`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, user: TokenUser) -> Result<Response, ApiError> {
    user.require(Scope::VmRead)?;
    let vm = state
        .provisioner
        .current_vm(user.user.github_id)
        .await?
        .ok_or(ApiError::NoVm)?;
    let view = VmView::load(&state.provisioner, &state.config.launch, &vm).await?;
    Ok(Json(view).into_response())
}

/// Launch a VM for the caller (one VM per user).
#[utoipa::path(post, path = "/vm", operation_id = "launch_vm", tag = "vm", security(("token" = ["vm:launch"])),
    request_body = LaunchBody,
    responses(
        (status = 202, description = "The VM, requested", body = VmView),
        (status = 409, description = "The caller has a VM already (`already_has_vm`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn launch(
    State(state): State<AppState>,
    user: TokenUser,
    body: Result<Json<LaunchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    user.require(Scope::VmLaunch)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let params = LaunchParams {
        giturl: Some(body.repo),
        git_ref: body.git_ref,
        urlpath: body.urlpath,
        labpath: None,
        filepath: None,
        profile: body.profile,
        ide: body.ide,
    };
    let mut request = params
        .validate(&state.config.launch.default_repo)
        .map_err(ApiError::BadRequest)?;
    // A token holds no GitHub token: profiles open by organization only
    // are not open to it.
    let (chosen, _) =
        crate::web::profile_choice::choose(&state, &user.user, None, request.profile.as_ref())
            .await
            .map_err(|why| ApiError::BadRequest(why.to_string()))?;
    request.profile = chosen.map(|p| p.name.clone());
    let vm = state.provisioner.launch(&user.user, &request).await?;
    let view = VmView::load(&state.provisioner, &state.config.launch, &vm).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// Delete the caller's VM.
#[utoipa::path(delete, path = "/vm", operation_id = "delete_vm", tag = "vm", security(("token" = ["vm:delete"])),
    responses(
        (status = 202, description = "The VM is being deleted"),
        (status = 404, description = "The caller has no VM (`no_vm`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn delete(State(state): State<AppState>, user: TokenUser) -> Result<Response, ApiError> {
    user.require(Scope::VmDelete)?;
    let vm = state
        .store
        .live_vm_of(user.user.github_id)
        .await?
        .ok_or(ApiError::NoVm)?;
    let why = format!("deleted by its owner {} through the API", user.user.login);
    state
        .provisioner
        .delete(&vm, DeleteReason::Owner, &why)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The caller's VM as it changes: Server-Sent Events, the same as the
/// status page follows (each event's data is a `VmView`).
#[utoipa::path(get, path = "/vm/events", operation_id = "follow_vm", tag = "vm", security(("token" = ["vm:read"])),
    responses(
        (status = 200, description = "An event stream of VmView", content_type = "text/event-stream", body = String),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn events(State(state): State<AppState>, user: TokenUser) -> Result<Response, ApiError> {
    user.require(Scope::VmRead)?;
    let stream = changes(
        state.provisioner.clone(),
        state.config.launch.clone(),
        user.user.github_id,
    )
    .take_until(state.shutdown.clone().cancelled_owned());
    let heartbeat = KeepAlive::new()
        .interval(Duration::from_secs(15))
        .text("heartbeat");
    Ok(Sse::new(stream).keep_alive(heartbeat).into_response())
}
