//! Deleting a VM's cloud resources: for a deletion, and for a failed
//! launch, which gives its server, volume and floating IP back at once.

use super::StepError;
use crate::cloud::{Server, ServerStatus};
use crate::domain::VmState;
use crate::provision::Provisioner;
use crate::store::{EventKind, VmRecord};
use chrono::Utc;

/// Where a teardown of a VM's cloud resources stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Teardown {
    /// The server is still going: look again at the next step.
    Waiting,
    /// Server, boot volume and floating IP are gone.
    Done,
}

impl Provisioner {
    /// Delete the VM's cloud resources, then mark it deleted. A failed
    /// launch's were torn down already.
    #[tracing::instrument(skip_all)]
    pub(super) async fn remove(&self, vm: &VmRecord) -> Result<(), StepError> {
        if vm.released_at.is_none() && self.tear_down(vm).await? == Teardown::Waiting {
            return Ok(());
        }
        self.inner
            .driver_store
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
    #[tracing::instrument(skip_all)]
    pub(super) async fn release(&self, vm: &VmRecord) -> Result<(), StepError> {
        if self.tear_down(vm).await? == Teardown::Waiting {
            return Ok(());
        }
        let store = &self.inner.driver_store;
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
    #[tracing::instrument(skip_all)]
    async fn tear_down(&self, vm: &VmRecord) -> Result<Teardown, StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
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
                store.check_lease().await?;
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
            store.check_lease().await?;
            cloud.release_floating_ip(fip).await?;
        }
        for volume in &vm.volume_ids.0 {
            store.check_lease().await?;
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

    #[tracing::instrument(skip_all)]
    async fn give_up_deleting(&self, vm: &VmRecord, server: &Server) -> Result<(), StepError> {
        let seconds = self.inner.settings.delete_give_up.as_secs();
        let message = format!(
            "failed while deleting: the cloud still shows the server as {:?} after {seconds} s; \
             the deletion is tried again in 30 min",
            server.status
        );
        let store = &self.inner.driver_store;
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
}
