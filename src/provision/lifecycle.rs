//! Cloud VMs cost money and quota: each has an expiry, and a ready VM
//! whose Jupyter has been idle too long is deleted.

use super::driver::StepError;
use super::{DeleteReason, Provisioner};
use crate::domain::VmState;
use crate::store::VmRecord;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// What Jupyter Server's `GET /api/status` says (asking does not count as
/// activity).
#[derive(Debug, Deserialize)]
struct JupyterStatus {
    last_activity: DateTime<Utc>,
}

impl Provisioner {
    /// Delete a VM whose time is up. Returns true when it did.
    #[tracing::instrument(skip_all)]
    pub(super) async fn expire_if_due(&self, vm: &VmRecord) -> bool {
        let due = vm.state.can_delete() && vm.expires_at.is_some_and(|t| t <= Utc::now());
        if !due {
            return false;
        }
        let lived = Utc::now() - vm.created_at;
        let why = format!(
            "expired after {} h {} min (with {} extension(s))",
            lived.num_hours(),
            lived.num_minutes() % 60,
            vm.extensions
        );
        match self
            .request_delete(&self.inner.driver_store, vm.id, DeleteReason::Expired, &why)
            .await
        {
            Ok(moved) => moved,
            Err(e) => {
                tracing::error!(error = %e, "could not delete an expired VM");
                false
            }
        }
    }

    /// Delete a ready VM unused for `launch.idle_timeout_minutes`. The
    /// proxy's record of requests and WebSocket frames comes first: recent
    /// use through it settles the question without asking the VM. Otherwise
    /// Jupyter's own `/api/status` is asked (it also sees busy kernels and
    /// use that bypassed the proxy), and the later of the two counts.
    #[tracing::instrument(skip_all)]
    pub(super) async fn cull_if_idle(&self, vm: &VmRecord) -> Result<(), StepError> {
        let limit = self.inner.settings.launch.idle_timeout_minutes;
        if limit == 0 || vm.state != VmState::Ready || !self.idle_check_due(vm) {
            return Ok(());
        }
        let limit_span = chrono::Duration::minutes(i64::from(limit));
        // `None` orders before any time, so `max` is the later of the two.
        let proxied = vm.proxied_at.max(self.inner.activity.last(vm.id));
        if proxied.is_some_and(|at| Utc::now() - at < limit_span) {
            return Ok(());
        }
        let Some(reported) = self.jupyter_last_activity(vm).await else {
            // Jupyter did not answer: the VM may be busy; expiry still applies.
            return Ok(());
        };
        self.inner
            .driver_store
            .set_last_activity(vm.id, reported)
            .await?;
        let last_activity = proxied.map_or(reported, |p| p.max(reported));
        let idle = Utc::now() - last_activity;
        if idle >= limit_span {
            let why = format!(
                "idle for {} min (the limit is {limit} min)",
                idle.num_minutes()
            );
            self.request_delete(&self.inner.driver_store, vm.id, DeleteReason::Idle, &why)
                .await?;
        }
        Ok(())
    }

    fn idle_check_due(&self, vm: &VmRecord) -> bool {
        let every = Duration::from_secs(self.inner.settings.idle_check_interval.as_secs().max(1));
        let mut checks = self.inner.idle_checks.lock().expect("lock");
        let now = Instant::now();
        match checks.get(&vm.id) {
            Some(last) if now.duration_since(*last) < every => false,
            _ => {
                checks.insert(vm.id, now);
                true
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn jupyter_last_activity(&self, vm: &VmRecord) -> Option<DateTime<Utc>> {
        let url = self.jupyter_upstream(vm)?.join("api/status").ok()?;
        let response = self
            .inner
            .http
            .get(url)
            .header("Authorization", format!("token {}", vm.jupyter_token))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response
            .json::<JupyterStatus>()
            .await
            .ok()
            .map(|s| s.last_activity)
    }
}
