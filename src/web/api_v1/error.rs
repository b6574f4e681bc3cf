//! The one error type of `/api/v1`: JSON `{"code", "message"}` with codes
//! that scripts may match on (they never change meaning).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("this token lacks the scope {0}")]
    MissingScope(&'static str),
    #[error("you may not use this server")]
    Forbidden,
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
        (
            status,
            Json(serde_json::json!({ "code": code, "message": message })),
        )
            .into_response()
    }
}
