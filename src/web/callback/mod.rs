//! `POST /api/vm/callback`: the launch script on a VM reports its progress
//! and log lines, authenticated by the VM's own secret. Authentication comes
//! first (one lookup by primary key and a constant-time compare), so forged
//! reports can never use up what real VMs need: failed attempts are
//! limited per client address (`failures.rs`), and the limits for
//! everyone together and per VM count authenticated reports only (a VM
//! reports every few seconds; a runaway one is slowed down with 429, which
//! the launch script waits out and retries). `GET /api/vm/assignment`
//! (`assignment.rs`), where a VM asks for its job, shares these limits.

mod assignment;
mod failures;

use super::client_ip::ClientIp;
use super::{AppState, WebError};
use crate::cloud_init::CallbackReport;
use crate::domain::VmId;
use crate::provision::ProvisionError;
use crate::store::CallbackOutcome;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use failures::FailedAttempts;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A report carries at most a few hundred log lines.
const MAX_BODY: usize = 256 * 1024;

/// Failed attempts (no or a wrong secret, not a report) one client
/// address may make per window before it is held off until the window ends.
const FAILURES_ALLOWED: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Authenticated reports of all VMs together: far above what a course's
/// VMs send.
const ALL_PER_SECOND: u32 = 200;
const ALL_BURST: u32 = 400;
/// One VM: a report every few seconds, bursts of log batches.
const VM_PER_SECOND: u32 = 5;
const VM_BURST: u32 = 60;

struct Limits {
    failures: FailedAttempts,
    all: DefaultDirectRateLimiter,
    per_vm: DefaultKeyedRateLimiter<VmId>,
}

impl Limits {
    fn new() -> Self {
        let quota = |per_second: u32, burst: u32| {
            Quota::per_second(NonZeroU32::new(per_second).expect("non-zero"))
                .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
        };
        Self {
            failures: FailedAttempts::new(FAILURES_ALLOWED, FAILURE_WINDOW),
            all: RateLimiter::direct(quota(ALL_PER_SECOND, ALL_BURST)),
            per_vm: RateLimiter::keyed(quota(VM_PER_SECOND, VM_BURST)),
        }
    }

    /// Whether this authenticated VM may report now. Only real VMs are
    /// keys, so the table stays as small as the number of VMs; the ones
    /// that went quiet are dropped from time to time.
    fn vm_may_report(&self, vm: VmId) -> bool {
        if self.per_vm.len() > 1000 {
            self.per_vm.retain_recent();
        }
        self.per_vm.check_key(&vm).is_ok()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/vm/callback", post(callback))
        .route("/api/vm/assignment", get(assignment::assignment))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(Extension(Arc::new(Limits::new())))
}

fn too_many_requests(retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        Json(serde_json::json!({ "error": "too many reports; slow down" })),
    )
        .into_response()
}

/// The secret a VM proves itself with: `Authorization: Bearer <secret>`.
fn vm_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A failed attempt: counted against the client's address, then answered.
fn failed(limits: &Limits, ip: IpAddr, error: WebError) -> Response {
    limits.failures.record(ip, Instant::now());
    error.into_json()
}

async fn callback(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<Limits>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(wait) = limits.failures.retry_after(ip, Instant::now()) {
        state.tarpit.hold(ip, wait).await;
        return too_many_requests(wait);
    }
    let Some(secret) = vm_secret(&headers) else {
        return failed(&limits, ip, WebError::Unauthorized);
    };
    let report: CallbackReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let error = WebError::BadRequest(format!("not a progress report: {e}"));
            return failed(&limits, ip, error);
        }
    };
    // Instrumented, not entered: a guard held across an await would lend
    // this span to whatever else runs on the thread meanwhile.
    let span = tracing::info_span!("callback", vm = %report.vm, seq = report.seq);
    authenticated(&state, &limits, ip, secret, &report)
        .instrument(span)
        .await
}

/// The rest of a report once it parsed: authenticate, limit, apply.
async fn authenticated(
    state: &AppState,
    limits: &Limits,
    ip: IpAddr,
    secret: &str,
    report: &CallbackReport,
) -> Response {
    let vm = match state.provisioner.authenticate(report.vm, secret).await {
        Ok(vm) => vm,
        Err(ProvisionError::Unauthorized) => {
            tracing::warn!(client = %ip, "callback with an unknown VM or a wrong secret");
            return failed(limits, ip, WebError::Unauthorized);
        }
        Err(e) => return WebError::Internal(e.into()).into_json(),
    };
    if limits.all.check().is_err() {
        tracing::warn!("reports of VMs are arriving faster than the overall limit");
        return too_many_requests(Duration::from_secs(1));
    }
    if !limits.vm_may_report(vm.id()) {
        tracing::warn!("a VM reports faster than its limit");
        return too_many_requests(Duration::from_secs(1));
    }
    match state.provisioner.report(vm, report).await {
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
