//! The background driver: one `step` looks at every unfinished VM and moves
//! it forward by at most one cloud interaction, persisting the result. The
//! loop around it only decides when to step again.

use super::Provisioner;
use crate::cloud::{CloudError, Server, ServerStatus};
use crate::config::JupyterAccess;
use crate::domain::{Progress, VmState};
use crate::secret;
use crate::store::{EventKind, StoreError, VmRecord};
use chrono::Utc;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

/// Where a teardown of a VM's cloud resources stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// The server is still going: look again at the next step.
    Waiting,
    /// Server, boot volume and floating IP are gone.
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl Provisioner {
    /// Run the driver until `cancel` fires. A step in progress finishes first.
    pub async fn run_until_stopped(self, cancel: CancellationToken) {
        tracing::info!(cloud = self.inner.cloud.kind(), "provisioner started");
        let interval = self.inner.settings.poll_interval;
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "provisioner step failed");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
        tracing::info!("provisioner stopped");
    }

    /// Look at every VM that is not deleted once: move launches and
    /// deletions forward, admit queued launches as room frees, enforce
    /// expiry and idle culling; now and then reconcile with the cloud.
    /// Returns how many VMs were looked at.
    pub async fn step(&self) -> Result<usize, StoreError> {
        let vms = self.inner.store.live_vms().await?;
        let count = vms.len();
        let admitted = super::capacity::admit(&vms, &self.inner.settings);
        futures_util::stream::iter(vms)
            .for_each_concurrent(self.inner.concurrency.limit(), |vm| {
                let admitted = admitted.contains(&vm.id);
                self.drive(vm, admitted)
            })
            .await;
        if let Err(e) = self.reconcile_if_due().await {
            tracing::warn!(error = %e, "reconciling with the cloud failed; will retry");
        }
        Ok(count)
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
            VmState::Building => self.build(&vm).await,
            VmState::Ready => self.cull_if_idle(&vm).await,
            VmState::Deleting => self.remove(&vm).await,
            VmState::Failed if vm.released_at.is_none() => self.release(&vm).await,
            VmState::Failed | VmState::Deleted => Ok(()),
        };
        match result {
            Ok(()) => {
                self.inner.last_errors.lock().expect("lock").remove(&vm.id);
            }
            Err(e) => self.note_error(&vm, &e).await,
        }
    }

    /// A queued launch waits for room; it gives up after the queue timeout.
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
    async fn note_error(&self, vm: &VmRecord, error: &StepError) {
        tracing::warn!(error = %error, "step failed; will retry");
        let message = error.to_string();
        let repeated = {
            let mut last = self.inner.last_errors.lock().expect("lock");
            last.insert(vm.id, message.clone()).as_deref() == Some(message.as_str())
        };
        if !repeated {
            let _ = self
                .inner
                .store
                .append_event(vm.id, EventKind::Warning, &format!("{message} (retrying)"))
                .await;
        }
        if matches!(vm.state, VmState::Creating | VmState::Booting)
            && self.timed_out(vm, self.inner.settings.launch.boot_timeout_seconds)
        {
            let phase = if vm.state == VmState::Creating {
                "creating"
            } else {
                "booting"
            };
            self.fail(vm, &format!("failed while {phase}: {message}"))
                .await;
        }
    }

    async fn start_creating(&self, vm: &VmRecord) -> Result<(), StepError> {
        if self
            .inner
            .store
            .transition(
                vm.id,
                VmState::Requested,
                VmState::Creating,
                "asking the cloud for a server",
            )
            .await?
        {
            let vm = self.inner.store.vm(vm.id).await?.expect("the VM exists");
            self.create(&vm).await?;
        }
        Ok(())
    }

    /// Create the server, or adopt the one an interrupted attempt created:
    /// servers carry our VM id in their metadata, so none is made twice.
    async fn create(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.store;
        if vm.server_id.is_none() {
            // A stored secret hash means an earlier attempt sent `POST
            // /servers` and never recorded the answer (a timeout, a
            // crash): that server may exist and not be listed yet.
            let earlier_attempt = vm.secret_hash.is_some();
            let found = if earlier_attempt {
                self.look_for_lost_server(vm).await?
            } else {
                self.find_server(vm).await?
            };
            match found {
                Some(server) => {
                    store.set_server_id(vm.id, &server.id).await?;
                    store
                        .append_event(
                            vm.id,
                            EventKind::State,
                            "found the server an earlier attempt created",
                        )
                        .await?;
                }
                None => {
                    // The hash is stored before the secret leaves, so whatever
                    // server results from this call can authenticate.
                    let callback_secret = secret::generate();
                    store
                        .set_secret_hash(vm.id, &secret::hash(&callback_secret))
                        .await?;
                    let spec = self.server_spec(vm, &callback_secret);
                    match cloud.create_server(&spec).await {
                        Ok(id) => store.set_server_id(vm.id, &id).await?,
                        Err(e) if !e.is_transient() => {
                            self.fail(vm, &format!("the cloud refused to create your server: {e}"))
                                .await;
                            return Ok(());
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        store
            .transition(
                vm.id,
                VmState::Creating,
                VmState::Booting,
                "the server exists and is booting",
            )
            .await?;
        Ok(())
    }

    async fn find_server(&self, vm: &VmRecord) -> Result<Option<Server>, CloudError> {
        self.inner
            .cloud
            .find_server(&self.inner.installation, &vm.id.to_string())
            .await
    }

    /// Look for the server of an attempt whose answer was lost, a few
    /// times with doubling waits (a new server can take a moment to be
    /// listed), before the caller makes another: a second server would
    /// boot with a new secret, and the first would be an orphan.
    async fn look_for_lost_server(&self, vm: &VmRecord) -> Result<Option<Server>, CloudError> {
        let mut wait = self.inner.settings.poll_interval;
        for _ in 0..self.inner.settings.create_lookups {
            if let Some(server) = self.find_server(vm).await? {
                return Ok(Some(server));
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        self.find_server(vm).await
    }

    async fn boot(&self, vm: &VmRecord) -> Result<(), StepError> {
        let store = &self.inner.store;
        let server_id = vm.server_id.as_deref().expect("a booting VM has a server");
        let Some(server) = self.inner.cloud.get_server(server_id).await? else {
            self.fail(
                vm,
                "failed while booting: the server disappeared from the cloud",
            )
            .await;
            return Ok(());
        };
        self.record_boot_volume(vm, &server).await?;
        match server.status {
            // UNKNOWN: Nova cannot reach the server's cell for now.
            ServerStatus::Build | ServerStatus::Unknown => {
                if self.timed_out(vm, self.inner.settings.launch.boot_timeout_seconds) {
                    let secs = self.inner.settings.launch.boot_timeout_seconds;
                    self.fail(
                        vm,
                        &format!("failed while booting: the server was not running after {secs} s"),
                    )
                    .await;
                }
            }
            ServerStatus::Active => {
                if let Some(address) = server.addresses.first() {
                    store.set_address(vm.id, address).await?;
                }
                self.attach_floating_ip(vm).await?;
                store
                    .transition(
                        vm.id,
                        VmState::Booting,
                        VmState::Building,
                        "the server is running; cloud-init starts the launch",
                    )
                    .await?;
            }
            ServerStatus::Error => {
                let fault = server.fault.as_deref().unwrap_or("no reason given");
                self.fail(
                    vm,
                    &format!("failed while booting: the cloud reports an error: {fault}"),
                )
                .await;
            }
            other => {
                self.fail(
                    vm,
                    &format!("failed while booting: the server is {other:?}"),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Record the boot volume once, the first time Nova shows it, and mark
    /// it as ours in Cinder (first, so a recorded volume is always marked).
    /// Only that volume is ever deleted with the VM: one attached later,
    /// by hand or otherwise, is not ours.
    async fn record_boot_volume(&self, vm: &VmRecord, server: &Server) -> Result<(), StepError> {
        if !vm.volume_ids.0.is_empty() {
            return Ok(());
        }
        // While the server is new, its boot volume is all it has; with
        // more than one attached we cannot tell, and record none.
        let [boot] = server.volume_ids.as_slice() else {
            return Ok(());
        };
        self.inner
            .cloud
            .tag_volume(boot, &self.inner.installation, &vm.id.to_string())
            .await?;
        self.inner
            .store
            .set_volume_ids(vm.id, std::slice::from_ref(boot))
            .await?;
        Ok(())
    }

    async fn attach_floating_ip(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.settings.cloud;
        // Behind the proxy a VM needs no public address.
        if cloud.jupyter_access == JupyterAccess::Proxy
            || cloud.floating_ip_pool.is_none()
            || vm.floating_ip.is_some()
        {
            return Ok(());
        }
        let server_id = vm.server_id.as_deref().expect("a booting VM has a server");
        match self
            .inner
            .cloud
            .attach_floating_ip(server_id, &self.inner.installation)
            .await
        {
            Ok(fip) => {
                self.inner
                    .store
                    .set_floating_ip(vm.id, Some((&fip.address, &fip.id)))
                    .await?;
            }
            Err(e @ (CloudError::NoFloatingIps(_) | CloudError::QuotaExceeded(_))) => {
                self.inner
                    .store
                    .append_event(
                        vm.id,
                        EventKind::Warning,
                        &format!("{e}: the VM is reachable only from inside the cloud"),
                    )
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// While cloud-init works, the VM reports its phases; we watch the
    /// clock of each phase and, at `ready`, check that Jupyter answers.
    async fn build(&self, vm: &VmRecord) -> Result<(), StepError> {
        let launch = &self.inner.settings.launch;
        let (phase, limit) = match vm.progress {
            None | Some(Progress::Cloning) => ("cloning", launch.clone_timeout_seconds),
            Some(Progress::Building) => ("building", launch.build_timeout_seconds),
            Some(Progress::Starting) | Some(Progress::Ready) => {
                ("starting", launch.start_timeout_seconds)
            }
            Some(Progress::Failed) => {
                let tail = self.inner.store.log_tail(vm.id, 1).await?;
                let last = tail.last().map_or("no log line", |e| e.message.as_str());
                let phase = vm.script_phase();
                self.fail(
                    vm,
                    &format!("failed while {phase}: the launch script reports: {last}"),
                )
                .await;
                return Ok(());
            }
        };
        if vm.progress == Some(Progress::Ready) && self.jupyter_answers(vm).await {
            let url = self
                .jupyter_upstream(vm)
                .map(|u| u.to_string())
                .unwrap_or_default();
            let moved = self
                .inner
                .store
                .transition(
                    vm.id,
                    VmState::Building,
                    VmState::Ready,
                    &format!("Jupyter answers at {url}"),
                )
                .await?;
            if moved {
                let took = (Utc::now() - vm.created_at).num_milliseconds() as f64 / 1000.0;
                self.inner.metrics.launch_ready(took);
            }
            return Ok(());
        }
        if self.timed_out(vm, limit) {
            let reason = if vm.progress == Some(Progress::Ready) {
                "the VM says Jupyter runs, but it does not answer"
            } else {
                "no progress from the VM"
            };
            self.fail(
                vm,
                &format!("failed while {phase}: timed out after {limit} s: {reason}"),
            )
            .await;
        }
        Ok(())
    }

    async fn jupyter_answers(&self, vm: &VmRecord) -> bool {
        let Some(url) = self.jupyter_upstream(vm).and_then(|u| u.join("api").ok()) else {
            return false;
        };
        matches!(self.inner.http.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// Delete the VM's cloud resources, then mark it deleted. A failed
    /// launch's were torn down already.
    async fn remove(&self, vm: &VmRecord) -> Result<(), StepError> {
        if vm.released_at.is_none() && self.tear_down(vm).await? == Teardown::Waiting {
            return Ok(());
        }
        self.inner
            .store
            .transition(
                vm.id,
                VmState::Deleting,
                VmState::Deleted,
                "server, volumes and floating IP are gone",
            )
            .await?;
        Ok(())
    }

    /// A failed launch gives its server, boot volume and floating IP back
    /// right away, so a failure costs no quota; the record, its log and its
    /// reason stay for the user. Persisted (`released_at`) and retried each
    /// step like a deletion, so a crash or a busy cloud only delays it.
    async fn release(&self, vm: &VmRecord) -> Result<(), StepError> {
        if self.tear_down(vm).await? == Teardown::Waiting {
            return Ok(());
        }
        let store = &self.inner.store;
        store.set_released(vm.id).await?;
        store
            .append_event(
                vm.id,
                EventKind::State,
                "the failed launch's server, volume and floating IP are deleted",
            )
            .await?;
        Ok(())
    }

    /// Delete the server and wait until it is gone, then delete the boot
    /// volume recorded at boot (never another volume attached to it) and
    /// release the floating IP. Each call does what it can and returns.
    async fn tear_down(&self, vm: &VmRecord) -> Result<Teardown, StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.store;
        let server_id = match &vm.server_id {
            Some(id) => Some(id.clone()),
            // A launch interrupted before its server id was recorded.
            None => self.find_server(vm).await?.map(|s| s.id),
        };
        let server = match &server_id {
            Some(id) => cloud.get_server(id).await?,
            None => None,
        };
        if let (Some(server_id), Some(server)) = (server_id, server) {
            self.record_boot_volume(vm, &server).await?;
            if vm.server_id.is_none() {
                store.set_server_id(vm.id, &server_id).await?;
            }
            if server.status != ServerStatus::Deleting || self.delete_retry_due(vm) {
                cloud.delete_server(&server_id).await?;
            }
            if vm.state == VmState::Deleting
                && self.timed_out(vm, self.inner.settings.delete_give_up.as_secs())
            {
                self.give_up_deleting(vm, &server).await?;
            }
            return Ok(Teardown::Waiting);
        }
        // The address goes first: once the server is gone it has no port and
        // looks free, so another VM may take it while Cinder keeps the volume
        // busy; releasing it only after the volume would take it from that VM.
        if let Some(fip) = &vm.floating_ip_id
            && self.inner.settings.cloud.release_floating_ip
        {
            cloud.release_floating_ip(fip).await?;
        }
        for volume in &vm.volume_ids.0 {
            cloud.delete_volume(volume).await?;
        }
        Ok(Teardown::Done)
    }

    /// Ask again for a deletion that stalls, at most every ten minutes.
    fn delete_retry_due(&self, vm: &VmRecord) -> bool {
        let every = self.inner.settings.delete_retry;
        if !self.timed_out(vm, every.as_secs()) {
            return false;
        }
        let mut retries = self.inner.delete_retries.lock().expect("lock");
        let now = std::time::Instant::now();
        match retries.get(&vm.id) {
            Some(last) if now.duration_since(*last) < every => false,
            _ => {
                retries.insert(vm.id, now);
                true
            }
        }
    }

    async fn give_up_deleting(&self, vm: &VmRecord, server: &Server) -> Result<(), StepError> {
        let seconds = self.inner.settings.delete_give_up.as_secs();
        let message = format!(
            "failed while deleting: the cloud still shows the server as {:?} after {seconds} s; \
             the deletion is tried again in 30 min",
            server.status
        );
        let store = &self.inner.store;
        if store
            .transition(vm.id, VmState::Deleting, VmState::Failed, &message)
            .await?
        {
            store
                .set_expiry(vm.id, Utc::now() + chrono::Duration::minutes(30))
                .await?;
            self.inner.metrics.launch_failed("deleting");
        }
        Ok(())
    }

    pub(super) async fn fail(&self, vm: &VmRecord, message: &str) {
        tracing::warn!(message, "launch failed");
        let phase = match vm.state {
            VmState::Requested => "queued",
            VmState::Building => vm.script_phase(),
            other => other.as_str(),
        };
        self.inner.metrics.launch_failed(phase);
        if let Err(e) = self
            .inner
            .store
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
