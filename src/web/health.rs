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
use std::time::Duration;

/// How long the database has to answer. Cut off from it (a partition),
/// a query on an open connection waits for ever; a load balancer must be
/// told, not left hanging.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

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
    let reachable = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
    };
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
