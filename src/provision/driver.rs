//! The background driver: one `step` looks at every unfinished VM and moves
//! it forward by at most one cloud interaction, persisting the result. The
//! loop around it only decides when to step again.

mod boot;
mod claimed;
mod create;
mod home;

pub(super) use create::LostCreate;
mod deletion;

use super::Provisioner;
use crate::cloud::CloudError;
use crate::domain::{LaunchPath, VmState};
use crate::store::{EventKind, StoreError, VmRecord};
use chrono::Utc;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// Something the launch needs is not ready yet (the owner's storage
    /// still detaching from their previous VM): why, for the VM's events.
    #[error("{0}")]
    Waiting(String),
}

impl StepError {
    /// The store refused a write: this replica does not lead.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_fenced())
    }
}

/// What a loop of the driver steps.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// The users' VMs, and the reconciler.
    Vms,
    /// The warm pool.
    Pool,
}

impl Provisioner {
    /// Run the driver until `cancel` fires. A step in progress finishes
    /// first. The warm pool steps in a loop of its own: its cloud calls
    /// (booting the refill one VM after another) must not hold back the
    /// users' VMs, such as the readiness probe of a claimed VM that just
    /// reported ready.
    pub async fn run_until_stopped(self, cancel: CancellationToken) {
        tracing::info!(cloud = self.inner.cloud.kind(), "provisioner started");
        tokio::join!(
            self.keep_stepping(Lane::Vms, &cancel),
            self.keep_stepping(Lane::Pool, &cancel),
        );
        tracing::info!("provisioner stopped");
    }

    /// Step `lane` now, then whenever it is woken or the poll interval has
    /// passed, until `cancel`.
    async fn keep_stepping(&self, lane: Lane, cancel: &CancellationToken) {
        let interval = self.inner.settings.poll_interval;
        let wake = match lane {
            Lane::Vms => &self.inner.wake,
            Lane::Pool => &self.inner.pool_wake,
        };
        loop {
            match lane {
                Lane::Vms => {
                    if let Err(e) = self.drive_vms().await {
                        tracing::error!(error = %e, "provisioner step failed");
                    }
                    self.reconcile_logged().await;
                }
                Lane::Pool => self.step_pool_logged().await,
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Look at every VM that is not deleted once: move launches and
    /// deletions forward, admit queued launches as room frees, enforce
    /// expiry and idle culling; then the warm pool; now and then
    /// reconcile with the cloud. Returns how many VMs were looked at. Its
    /// writes hold only while this replica holds the driver lease
    /// (`Provisioner::leadership`). (In the background the pool steps on
    /// its own: `run_until_stopped`.)
    #[tracing::instrument(name = "step", skip_all)]
    pub async fn step(&self) -> Result<usize, StoreError> {
        let count = self.drive_vms().await?;
        self.step_pool_logged().await;
        self.reconcile_logged().await;
        Ok(count)
    }

    /// Move every VM that is not deleted forward once.
    async fn drive_vms(&self) -> Result<usize, StoreError> {
        let vms = self.inner.driver_store.live_vms().await?;
        self.forget_finished_searches(&vms);
        let count = vms.len();
        let pool_vms = self.inner.driver_store.pool_vms().await?.len();
        let admitted = super::capacity::admit(&vms, pool_vms, &self.inner.settings);
        futures_util::stream::iter(vms)
            .for_each_concurrent(self.inner.concurrency.limit(), |vm| {
                let admitted = admitted.contains(&vm.id);
                self.drive(vm, admitted)
            })
            .await;
        Ok(count)
    }

    async fn step_pool_logged(&self) {
        if let Err(e) = self.step_pool().await {
            tracing::warn!(error = %e, "the warm pool's step failed; will retry");
        }
    }

    async fn reconcile_logged(&self) {
        if let Err(e) = self.reconcile_if_due().await {
            tracing::warn!(error = %e, "reconciling with the cloud failed; will retry");
        }
    }

    #[tracing::instrument(name = "drive", skip_all, fields(vm = %vm.id, user = %vm.owner_login, state = %vm.state))]
    async fn drive(&self, vm: VmRecord, admitted: bool) {
        if self.expire_if_due(&vm).await {
            return;
        }
        let result = match vm.state {
            VmState::Requested if admitted => self.start_creating(&vm).await,
            VmState::Requested => self.wait_in_queue(&vm).await,
            VmState::Creating => self.create(&vm).await,
            VmState::Booting => self.boot(&vm).await,
            VmState::Building if vm.launch_path == LaunchPath::Pool => {
                if self.claim_timed_out(&vm) {
                    self.give_up_claim(&vm).await
                } else if vm.claim_settled_at.is_none() {
                    self.settle_claim(&vm).await
                } else {
                    self.build(&vm).await
                }
            }
            VmState::Building => self.build(&vm).await,
            VmState::Ready => self.cull_if_idle(&vm).await,
            VmState::Deleting => self.remove(&vm).await,
            VmState::Failed if vm.released_at.is_none() => self.release(&vm).await,
            VmState::Failed | VmState::Deleted => Ok(()),
        };
        match result {
            // While the server of a lost create is looked for, the outage
            // that lost it is not over: it is told once, not once a search.
            Ok(()) if self.searching_lost_server(vm.id) => {}
            Ok(()) => {
                self.inner.last_errors.lock().expect("lock").remove(&vm.id);
            }
            // Not ours to move any more: the lease went to another replica
            // (and this step is about to be cancelled); nothing to tell.
            Err(e) if e.is_fenced() => {
                tracing::info!(error = %e, "left the VM to the replica that drives");
            }
            Err(e) => self.note_error(&vm, &e).await,
        }
    }

    /// A queued launch waits for room; it gives up after the queue timeout.
    #[tracing::instrument(skip_all)]
    async fn wait_in_queue(&self, vm: &VmRecord) -> Result<(), StepError> {
        let minutes = self.inner.settings.launch.queue_timeout_minutes;
        if self.timed_out(vm, u64::from(minutes) * 60) {
            let why = match self.inner.settings.cloud.max_vms {
                Some(0) => "launches are paused for maintenance".to_owned(),
                _ => "all VM slots stayed in use".to_owned(),
            };
            self.fail(
                vm,
                &format!("failed while queued: no room within {minutes} min ({why}); please try again later"),
            )
            .await;
        }
        Ok(())
    }

    /// A failed attempt: log it, tell the user once, retry at the next step;
    /// a launch gives up when the phase's time is up.
    #[tracing::instrument(skip_all)]
    async fn note_error(&self, vm: &VmRecord, error: &StepError) {
        let message = error.to_string();
        // A wait is told as it is (the status page shows warnings), an
        // error with the retry that follows.
        let event = if let StepError::Waiting(_) = error {
            tracing::info!(why = %error, "waiting");
            message.clone()
        } else {
            tracing::warn!(error = %error, "step failed; will retry");
            format!("{message} (retrying)")
        };
        let repeated = {
            let mut last = self.inner.last_errors.lock().expect("lock");
            last.insert(vm.id, message.clone()).as_deref() == Some(message.as_str())
        };
        if !repeated {
            let _ = self
                .inner
                .driver_store
                .append_event(vm.id, EventKind::Warning, &event)
                .await;
        }
        let limit = self.inner.settings.launch.boot_timeout_seconds.get();
        // A claimed VM whose job waits for its owner's first home volume
        // waits as long as a cold boot's create would for it.
        let phase = match vm.state {
            VmState::Creating => Some("creating"),
            VmState::Booting => Some("booting"),
            VmState::Building if vm.launch_path == LaunchPath::Pool && vm.assigned_at.is_none() => {
                Some("building")
            }
            _ => None,
        };
        if let Some(phase) = phase
            && self.timed_out(vm, limit)
        {
            let message = match error {
                StepError::Waiting(_) => format!(
                    "failed while {phase}: {message}, and gave up after {limit} s; try again later"
                ),
                _ => format!("failed while {phase}: {message}"),
            };
            self.fail(vm, &message).await;
        }
    }

    pub(super) async fn fail(&self, vm: &VmRecord, message: &str) {
        tracing::warn!(message, "launch failed");
        let phase = match vm.state {
            VmState::Requested => "queued",
            VmState::Building => vm.script_phase().as_str(),
            other => other.as_str(),
        };
        self.inner.metrics.launch_failed(phase);
        if let Err(e) = self
            .inner
            .driver_store
            .transition(vm.id, vm.state, VmState::Failed, message)
            .await
        {
            tracing::error!(error = %e, "could not record the failure");
        }
    }

    pub(super) fn timed_out(&self, vm: &VmRecord, limit_seconds: u64) -> bool {
        let elapsed = Utc::now() - vm.phase_started_at;
        elapsed.num_milliseconds() > (limit_seconds as i64).saturating_mul(1000)
    }
}
