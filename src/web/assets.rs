//! The stylesheet and the two small scripts, compiled into the binary.

use super::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const STYLE: &str = include_str!("../../static/style.css");
const STATUS_JS: &str = include_str!("../../static/status.js");
const HOME_JS: &str = include_str!("../../static/home.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/static/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/static/status.js",
            get(|| asset("text/javascript; charset=utf-8", STATUS_JS)),
        )
        .route(
            "/static/home.js",
            get(|| asset("text/javascript; charset=utf-8", HOME_JS)),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}
