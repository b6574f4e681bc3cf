//! `/healthz`: 200 while the store answers, 503 otherwise; either way which
//! database this is and whether this replica drives (the holder of the
//! driver lease) or stands by.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

#[derive(Serialize)]
struct Health {
    /// "ok", or "unavailable" when the database does not answer.
    status: &'static str,
    /// "sqlite" or "postgres".
    database: &'static str,
    /// "leader" or "standby".
    driver: &'static str,
}

async fn healthz(State(state): State<AppState>) -> Response {
    let reachable = state.store.ping().await;
    let health = |status| Health {
        status,
        database: state.store.kind(),
        driver: state.provisioner.leadership().role().label(),
    };
    match reachable {
        Ok(()) => Json(health("ok")).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(health("unavailable"))).into_response()
        }
    }
}
