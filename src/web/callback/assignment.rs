//! `GET /api/vm/assignment?vm=<id>`: a VM asks for its job, authenticated
//! like its reports (`Authorization: Bearer <secret>`, counted against the
//! client's address when wrong). A long-poll: 200 with the assignment as
//! soon as the VM has one, 204 when the hold ends without one (the VM asks
//! again), 409 when no job will come (failed, being deleted, gone).

use super::{Limits, failed, too_many_requests};
use crate::domain::VmId;
use crate::provision::ProvisionError;
use crate::store::AssignmentLookup;
use crate::web::client_ip::ClientIp;
use crate::web::{AppState, WebError};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

#[derive(Deserialize)]
pub(super) struct Asking {
    vm: VmId,
}

pub(super) async fn assignment(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    asking: Result<Query<Asking>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(wait) = limits.failures.retry_after(ip, Instant::now()) {
        state.tarpit.hold(ip, wait).await;
        return too_many_requests(wait);
    }
    let Some(secret) = super::vm_secret(&headers) else {
        return failed(&limits, ip, WebError::Unauthorized);
    };
    let Ok(Query(Asking { vm })) = asking else {
        let error = WebError::BadRequest("ask with ?vm=<the VM's id>".into());
        return failed(&limits, ip, error);
    };
    let provisioner = &state.provisioner;
    let span = tracing::info_span!("assignment", vm = %vm);
    async {
        let vm = match provisioner.authenticate_for_assignment(vm, secret).await {
            Ok(authenticated) => authenticated,
            Err(ProvisionError::Unauthorized) => {
                tracing::warn!(client = %ip, "assignment asked with an unknown VM or a wrong secret");
                return failed(&limits, ip, WebError::Unauthorized);
            }
            Err(e) => return WebError::Internal(e.into()).into_json(),
        };
        if !limits.vm_may_report(vm.id()) {
            tracing::warn!("a VM asks for its assignment faster than its limit");
            return too_many_requests(Duration::from_secs(1));
        }
        // A shutting-down server lets the VM ask again elsewhere at once.
        let answer = tokio::select! {
            answer = provisioner.wait_for_assignment(vm) => answer,
            () = state.shutdown.cancelled() => Ok(AssignmentLookup::Waiting),
        };
        match answer {
            Ok(AssignmentLookup::Assigned(assignment)) => {
                tracing::info!("the VM has its assignment");
                Json(assignment).into_response()
            }
            Ok(AssignmentLookup::Waiting) => StatusCode::NO_CONTENT.into_response(),
            Ok(AssignmentLookup::Gone) => (
                StatusCode::CONFLICT,
                Json(serde_json::json!({ "error": "this VM is not expected (any more)" })),
            )
                .into_response(),
            Err(e) => WebError::Internal(e.into()).into_json(),
        }
    }
    .instrument(span)
    .await
}
