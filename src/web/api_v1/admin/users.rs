//! Admin: the users and pending invitations, and revoking and allowing a
//! user, through the `Access` service as `/admin` and `users` do.

use crate::access::Access;
use crate::domain::GithubId;
use crate::provision::Purge;
use crate::store::{Invite, User};
use crate::web::AppState;
use crate::web::api_v1::auth::AdminUser;
use crate::web::api_v1::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(revoke))
        .routes(routes!(allow))
}

/// A user who logged in at least once.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub github_id: i64,
    pub login: String,
    /// On `registration.admins`.
    pub admin: bool,
    pub last_login_at: DateTime<Utc>,
    /// Unset: logged in without registering.
    pub registered_at: Option<DateTime<Utc>>,
    pub registered_via: Option<String>,
    /// Set: revoked, until an admin allows them again.
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl UserView {
    fn new(user: User, access: &Access) -> Self {
        Self {
            github_id: user.github_id.0,
            admin: access.is_admin(user.github_id),
            login: user.login.to_string(),
            last_login_at: user.last_login_at,
            registered_at: user.registered_at,
            registered_via: user.registered_via,
            revoked_at: user.revoked_at,
            revoked_by: user.revoked_by,
        }
    }
}

/// A login allowed before it ever logged in.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    pub login: String,
    pub invited_at: DateTime<Utc>,
    pub invited_by: String,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> Self {
        Self {
            login: i.login.to_string(),
            invited_at: i.invited_at,
            invited_by: i.invited_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsersList {
    pub users: Vec<UserView>,
    pub invites: Vec<InviteView>,
}

/// The users (by login) and the pending invitations.
#[utoipa::path(get, path = "/users", operation_id = "list_users", tag = "admin", security(("token" = ["admin:*"])),
    responses(
        (status = 200, description = "Users and invitations", body = UsersList),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<UsersList>, ApiError> {
    let users = state.store.list_users().await?;
    let invites = state.store.list_invites().await?;
    Ok(Json(UsersList {
        users: users
            .into_iter()
            .map(|u| UserView::new(u, &state.access))
            .collect(),
        invites: invites.into_iter().map(InviteView::from).collect(),
    }))
}

/// What revoking a user did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    pub login: String,
    /// Their live VM, now being deleted.
    pub vm_deleted: Option<String>,
    /// Their storage: `none`, `kept`, `deleted`, or `deleted_with_vm`
    /// (once their VM is gone).
    pub storage: &'static str,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevokeQuery {
    /// Delete their storage (home volume) too; without it, it is kept.
    #[serde(default)]
    purge: bool,
}

/// The user with GitHub id `id`.
async fn known_user(state: &AppState, id: i64) -> Result<User, ApiError> {
    state
        .store
        .user(GithubId(id))
        .await?
        .ok_or(ApiError::NoSuchUser(id))
}

/// Revoke a user, as the admin page does: off the allowlist until an
/// admin allows them again, and their VM deleted.
#[utoipa::path(post, path = "/users/{github_id}/revoke", operation_id = "revoke_user", tag = "admin",
    security(("token" = ["admin:*"])),
    params(("github_id" = i64, Path, description = "The user's GitHub id"), RevokeQuery),
    responses(
        (status = 200, description = "Revoked", body = RevokedView),
        (status = 404, description = "No such user (`no_such_user`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn revoke(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(github_id): Path<i64>,
    query: Result<Query<RevokeQuery>, QueryRejection>,
) -> Result<Json<RevokedView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let user = known_user(&state, github_id).await?;
    let admin = &admin.0.user.login;
    let by = format!("admin {admin} (API)");
    let why = format!("its owner was revoked by the admin {admin} through the API");
    let revoked = state.access.revoke(&user.login, &by, &why).await?;
    let storage = if query.purge {
        match state.provisioner.purge_storage(user.github_id).await {
            Ok(Purge::Nothing) => "none",
            Ok(Purge::Deleted(_)) => "deleted",
            Ok(Purge::Later(_)) => "deleted_with_vm",
            Err(e) => return Err(super::storage::storage_error(&user.login, e)),
        }
    } else if state.store.home_volume(user.github_id).await?.is_some() {
        "kept"
    } else {
        "none"
    };
    Ok(Json(RevokedView {
        login: user.login.to_string(),
        vm_deleted: revoked.vm.map(|vm| vm.id.to_string()),
        storage,
    }))
}

/// What allowing a user did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllowedView {
    pub login: String,
    /// False when they were registered already.
    pub newly_registered: bool,
}

/// Register a user (again), lifting a revocation, as the admin page does.
#[utoipa::path(post, path = "/users/{github_id}/allow", operation_id = "allow_user", tag = "admin",
    security(("token" = ["admin:*"])),
    params(("github_id" = i64, Path, description = "The user's GitHub id")),
    responses(
        (status = 200, description = "Registered", body = AllowedView),
        (status = 404, description = "No such user (`no_such_user`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn allow(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(github_id): Path<i64>,
) -> Result<Json<AllowedView>, ApiError> {
    let user = known_user(&state, github_id).await?;
    let by = format!("admin {} (API)", admin.0.user.login);
    let newly_registered = state.access.allow_user(user.github_id, &by).await?;
    tracing::info!(user = %user.login, admin = %admin.0.user.login, "user allowed");
    Ok(Json(AllowedView {
        login: user.login.to_string(),
        newly_registered,
    }))
}
