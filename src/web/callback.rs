//! `POST /api/vm/callback`: the launch script on a VM reports its progress
//! and log lines, authenticated by the VM's own secret.

use super::{AppState, WebError};
use crate::cloud_init::CallbackReport;
use crate::provision::ProvisionError;
use crate::store::CallbackOutcome;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

/// A report carries at most a few hundred log lines.
const MAX_BODY: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/vm/callback", post(callback))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return WebError::Unauthorized.into_json();
    };
    let report: CallbackReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return WebError::BadRequest(format!("not a progress report: {e}")).into_json(),
    };
    let span = tracing::info_span!("callback", vm = %report.vm, seq = report.seq);
    let _guard = span.enter();
    match state.provisioner.report(&report, secret).await {
        Ok(CallbackOutcome::Applied) => {
            Json(serde_json::json!({ "status": "applied" })).into_response()
        }
        Ok(CallbackOutcome::Stale) => {
            Json(serde_json::json!({ "status": "stale" })).into_response()
        }
        Ok(CallbackOutcome::Refused) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": "this VM is not launching (any more)" })),
        )
            .into_response(),
        Err(ProvisionError::Unauthorized) => {
            tracing::warn!("callback with an unknown VM or a wrong secret");
            WebError::Unauthorized.into_json()
        }
        Err(e) => WebError::Internal(e.into()).into_json(),
    }
}
