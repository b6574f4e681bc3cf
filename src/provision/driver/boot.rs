//! A created server boots, then the VM's launch script builds and starts
//! Jupyter: the driver watches both and decides when the VM is ready.

use super::StepError;
use crate::cloud::{CloudError, Server, ServerStatus};
use crate::config::JupyterAccess;
use crate::domain::{Progress, VmState};
use crate::provision::Provisioner;
use crate::store::{EventKind, VmRecord};
use chrono::Utc;

impl Provisioner {
    #[tracing::instrument(skip_all)]
    pub(super) async fn boot(&self, vm: &VmRecord) -> Result<(), StepError> {
        let store = &self.inner.driver_store;
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
                if self.timed_out(vm, self.inner.settings.launch.boot_timeout_seconds.get()) {
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
    #[tracing::instrument(skip_all)]
    pub(super) async fn record_boot_volume(
        &self,
        vm: &VmRecord,
        server: &Server,
    ) -> Result<(), StepError> {
        if !vm.volume_ids.0.is_empty() || server.volume_ids.is_empty() {
            return Ok(());
        }
        // While the server is new, its boot volume is all it has besides
        // the owner's home volume (never ours to delete); with more than
        // one other attached we cannot tell, and record none.
        let home = self.inner.driver_store.home_volume(vm.owner_id).await?;
        let home = home.as_ref().map(|h| h.volume_id.as_str());
        let others: Vec<&String> = server
            .volume_ids
            .iter()
            .filter(|id| Some(id.as_str()) != home)
            .collect();
        let [boot] = others.as_slice() else {
            return Ok(());
        };
        self.inner
            .cloud
            .tag_volume(boot, &self.inner.installation, &vm.id.to_string())
            .await?;
        self.inner
            .driver_store
            .set_volume_ids(vm.id, std::slice::from_ref(boot))
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub(in crate::provision) async fn attach_floating_ip(
        &self,
        vm: &VmRecord,
    ) -> Result<(), StepError> {
        let cloud = &self.inner.settings.cloud;
        // Behind the proxy a VM needs no public address.
        if cloud.jupyter_access == JupyterAccess::Proxy
            || cloud.floating_ip_pool.is_none()
            || vm.floating_ip.is_some()
        {
            return Ok(());
        }
        let server_id = vm.server_id.as_deref().expect("a booting VM has a server");
        self.inner.driver_store.check_lease().await?;
        match self
            .inner
            .cloud
            .attach_floating_ip(server_id, &self.inner.installation)
            .await
        {
            Ok(fip) => {
                self.inner
                    .driver_store
                    .set_floating_ip(vm.id, Some((&fip.address, &fip.id)))
                    .await?;
            }
            Err(e @ (CloudError::NoFloatingIps(_) | CloudError::QuotaExceeded(_))) => {
                self.inner
                    .driver_store
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
    #[tracing::instrument(skip_all)]
    pub(super) async fn build(&self, vm: &VmRecord) -> Result<(), StepError> {
        let launch = &self.inner.settings.launch;
        let (phase, limit) = match vm.progress {
            None | Some(Progress::Cloning) => ("cloning", launch.clone_timeout_seconds),
            Some(Progress::Building) => ("building", launch.build_timeout_seconds),
            Some(Progress::Starting) | Some(Progress::Ready) => {
                ("starting", launch.start_timeout_seconds)
            }
            Some(Progress::Failed) => {
                let tail = self.inner.driver_store.log_tail(vm.id, 1).await?;
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
            self.check_ide(vm).await?;
            let url = self
                .jupyter_upstream(vm)
                .map(|u| u.to_string())
                .unwrap_or_default();
            let moved = self
                .inner
                .driver_store
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
        if self.timed_out(vm, limit.get()) {
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

    /// Whether the VM's Jupyter provides the interface the launch asked
    /// for: a path that answers 404 is missing (the environment does not
    /// install its jupyter-server-proxy entry), and the status page then
    /// says so instead of linking to it. Anything but a 404 (a page, a
    /// redirect, even an error) counts as there: only a clear answer is
    /// said to the user.
    #[tracing::instrument(skip_all, fields(vm = %vm.id))]
    async fn check_ide(&self, vm: &VmRecord) -> Result<(), StepError> {
        let Some(ide) = vm.ide.filter(|_| vm.ide_missing_at.is_none()) else {
            return Ok(());
        };
        let Some(url) = self
            .jupyter_upstream(vm)
            .and_then(|u| u.join(ide.path()).ok())
        else {
            return Ok(());
        };
        let answer = self
            .inner
            .http
            .get(url)
            .header("Authorization", format!("token {}", vm.jupyter_token))
            .send()
            .await;
        if matches!(answer, Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND) {
            let store = &self.inner.driver_store;
            store.set_ide_missing(vm.id).await?;
            store
                .append_event(
                    vm.id,
                    EventKind::State,
                    &format!(
                        "this environment does not provide {} (its Jupyter has no /{})",
                        ide.label(),
                        ide.path()
                    ),
                )
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn jupyter_answers(&self, vm: &VmRecord) -> bool {
        let Some(url) = self.jupyter_upstream(vm).and_then(|u| u.join("api").ok()) else {
            return false;
        };
        matches!(self.inner.http.get(url).send().await, Ok(r) if r.status().is_success())
    }
}
