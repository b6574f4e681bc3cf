//! `/api/v1`: the REST API for scripts, an LMS or a course page's launch
//! button. Bearer tokens only (see `auth`); JSON errors (see `error`).

mod auth;
mod error;
pub mod scope;
mod vm;

use super::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().nest("/api/v1", vm::router())
}
