//! Admin: registration links, listed, made and revoked through the
//! `Access` service as `/admin` and `users link` do.

use crate::access::{LinkLabel, LinkRequest, LinkRevocation};
use crate::store::{LinkState, RegistrationLink};
use crate::web::AppState;
use crate::web::api_v1::auth::AdminUser;
use crate::web::api_v1::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// A registration link; its secret is shown only when it is made.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub id: i64,
    pub label: String,
    pub state: LinkState,
    pub uses: i64,
    pub max_uses: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl LinkView {
    fn new(link: RegistrationLink, now: DateTime<Utc>) -> Self {
        Self {
            state: link.state(now),
            id: link.id,
            label: link.label,
            uses: link.uses,
            max_uses: link.max_uses,
            expires_at: link.expires_at,
            created_at: link.created_at,
            created_by: link.created_by,
            revoked_at: link.revoked_at,
        }
    }
}

/// Every stored link, newest first (not the one of `registration.secret`).
#[utoipa::path(get, path = "/links", operation_id = "list_links", tag = "admin", security(("token" = ["admin:*"])),
    responses(
        (status = 200, description = "The links", body = Vec<LinkView>),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<LinkView>>, ApiError> {
    let now = Utc::now();
    let links = state.store.list_links().await?;
    Ok(Json(
        links.into_iter().map(|l| LinkView::new(l, now)).collect(),
    ))
}

/// A link to make; strict: unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLinkBody {
    /// What the link is for, e.g. a course: 1 to 100 characters.
    label: String,
    /// The link stops working this many days after it was made.
    #[schema(value_type = Option<u32>, minimum = 1)]
    expires_in_days: Option<NonZeroU32>,
    /// The link stops working after this many registrations.
    #[schema(value_type = Option<u32>, minimum = 1)]
    max_uses: Option<NonZeroU32>,
}

/// A link just made, with the URL that holds its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedLinkView {
    pub link: LinkView,
    pub url: String,
}

/// Make a registration link.
#[utoipa::path(post, path = "/links", operation_id = "create_link", tag = "admin", security(("token" = ["admin:*"])),
    request_body = NewLinkBody,
    responses(
        (status = 201, description = "The link, with its URL shown this once", body = CreatedLinkView),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    body: Result<Json<NewLinkBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedLinkView>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let label = LinkLabel::parse(&body.label)
        .ok_or_else(|| ApiError::BadRequest("label must be 1 to 100 characters".into()))?;
    let request = LinkRequest {
        label,
        expires_in_days: body.expires_in_days.map(|d| i64::from(d.get())),
        max_uses: body.max_uses.map(|n| i64::from(n.get())),
    };
    let created = state
        .access
        .create_link(request, admin.0.user.login.as_str())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedLinkView {
            link: LinkView::new(created.link, Utc::now()),
            url: created.url.to_string(),
        }),
    ))
}

/// Stop a link from working (again is fine).
#[utoipa::path(delete, path = "/links/{id}", operation_id = "revoke_link", tag = "admin", security(("token" = ["admin:*"])),
    params(("id" = i64, Path, description = "The link's id")),
    responses(
        (status = 204, description = "Revoked (or it was already)"),
        (status = 404, description = "No such link (`no_such_link`)", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    ))]
async fn revoke(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    match state.access.revoke_link(id).await? {
        LinkRevocation::Revoked | LinkRevocation::AlreadyRevoked => Ok(StatusCode::NO_CONTENT),
        LinkRevocation::NoSuchLink => Err(ApiError::NoSuchLink(id)),
    }
}
