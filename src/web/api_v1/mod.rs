//! `/api/v1`: the REST API for scripts, an LMS or a course page's launch
//! button. Bearer tokens only (see `auth`); JSON errors (see `error`);
//! requests per token limited (see `rate_limit`); every route registered
//! with its OpenAPI description (see `openapi`).

mod admin;
mod auth;
mod error;
mod openapi;
mod rate_limit;
pub mod scope;
mod vm;

pub use rate_limit::ApiRateLimit;

use super::AppState;
use axum::{Extension, Router};
use error::ApiError;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> Router<AppState> {
    let routes = OpenApiRouter::new()
        .merge(vm::router())
        .merge(admin::router())
        .routes(routes!(openapi::document))
        .fallback(|| async { ApiError::NoSuchRoute });
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", routes)
        .split_for_parts();
    router.layer(Extension(Arc::new(doc)))
}
