//! The one error type of `/api/v1`: JSON `{"code", "message"}` with codes
//! that scripts may match on (they never change meaning).

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("this token lacks the scope {0}")]
    MissingScope(&'static str),
    #[error("you may not use this server")]
    Forbidden,
    #[error("this token's owner is not an admin")]
    NotAdmin,
    #[error("this token has made too many requests; try again in {0} s")]
    RateLimited(u64),
    #[error("too many wrong tokens came from your address; try again in {0} s")]
    AddressLocked(u64),
    #[error("there is no such route under /api/v1 (see /api/v1/openapi.json)")]
    NoSuchRoute,
    #[error("there is no VM {0}")]
    NoSuchVm(String),
    #[error("there is no user with the GitHub id {0}")]
    NoSuchUser(i64),
    #[error("there is no registration link {0}")]
    NoSuchLink(i64),
    #[error("{0} has no storage")]
    NoSuchStorage(String),
    /// A VM uses it, it is still detaching, or it is not ours any more.
    #[error("{0}")]
    StorageInUse(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("you have no VM")]
    NoVm,
    #[error("you already have a VM")]
    AlreadyHasVm,
    #[error("{0}")]
    BadRequest(String),
    #[error("launches are paused: {0}")]
    Paused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::MissingScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotAdmin => (StatusCode::FORBIDDEN, "not_admin"),
            Self::RateLimited(_) | Self::AddressLocked(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
            Self::NoSuchRoute => (StatusCode::NOT_FOUND, "not_found"),
            Self::NoSuchVm(_) => (StatusCode::NOT_FOUND, "no_such_vm"),
            Self::NoSuchUser(_) => (StatusCode::NOT_FOUND, "no_such_user"),
            Self::NoSuchLink(_) => (StatusCode::NOT_FOUND, "no_such_link"),
            Self::NoSuchStorage(_) => (StatusCode::NOT_FOUND, "no_such_storage"),
            Self::StorageInUse(_) => (StatusCode::CONFLICT, "storage_in_use"),
            Self::NotAllowed(_) => (StatusCode::FORBIDDEN, "repository_not_allowed"),
            Self::NoVm => (StatusCode::NOT_FOUND, "no_vm"),
            Self::AlreadyHasVm => (StatusCode::CONFLICT, "already_has_vm"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Paused(_) => (StatusCode::SERVICE_UNAVAILABLE, "launches_paused"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::provision::ProvisionError> for ApiError {
    fn from(e: crate::provision::ProvisionError) -> Self {
        use crate::provision::ProvisionError;
        match e {
            ProvisionError::AlreadyHasVm(_) => Self::AlreadyHasVm,
            ProvisionError::NotAllowed(m) => Self::NotAllowed(m),
            ProvisionError::Paused(why) => Self::Paused(why),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::access::AccessError> for ApiError {
    fn from(e: crate::access::AccessError) -> Self {
        use crate::access::AccessError;
        match e {
            AccessError::Refused { .. } => Self::Forbidden,
            AccessError::Provision(e) => e.into(),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<super::super::WebError> for ApiError {
    fn from(e: super::super::WebError) -> Self {
        Self::Internal(anyhow::anyhow!("{e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(error = ?e, "api request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = Json(ErrorBody {
            code: code.to_owned(),
            message,
        });
        match self {
            Self::RateLimited(seconds) | Self::AddressLocked(seconds) => {
                (status, [(RETRY_AFTER, seconds.to_string())], body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

/// What every error of `/api/v1` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, for scripts to match on: `unauthenticated`, `insufficient_scope`,
    /// `forbidden`, `not_admin`, `rate_limited`, `repository_not_allowed`,
    /// `no_vm`, `already_has_vm`, `no_such_vm`, `no_such_user`,
    /// `no_such_link`, `not_found`, `bad_request`, `launches_paused`, `internal`.
    pub code: String,
    /// For people; its wording may change.
    pub message: String,
}
