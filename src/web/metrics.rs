//! `/metrics` in the Prometheus text format.

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.server.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::secret::equal(presented.as_bytes(), token.expose_secret().as_bytes()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let counts = match tokio::try_join!(state.store.vm_counts(), state.store.pool_ready_count()) {
        Ok(counts) => counts,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot count VMs");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.provisioner.metrics().render(&counts.0, counts.1),
    )
        .into_response()
}
