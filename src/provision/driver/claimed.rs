//! A VM claimed from the warm pool: its server was booted without an
//! owner, so after the claim it is renamed and marked as its owner's, gets
//! its floating IP (in `floating_ip` mode; none behind the proxy) and its
//! owner's home volume, attached now (it could not be at boot). A claimed
//! VM that does not ask for its assignment within `claim_timeout_seconds`
//! is given up: its server is deleted and the launch boots a VM of its own.

use super::StepError;
use super::home::{HomeVolumeUse, usable};
use crate::cloud::{ServerStatus, VolumeStatus};
use crate::provision::Provisioner;
use crate::store::{EventKind, VmRecord};

impl Provisioner {
    /// Whether a claimed VM has gone `claim_timeout_seconds` without a word
    /// (it reports its first phase once it has its assignment).
    pub(super) fn claim_timed_out(&self, vm: &VmRecord) -> bool {
        vm.progress.is_none() && self.timed_out(vm, self.inner.settings.pool.claim_timeout_seconds)
    }

    /// Rename and mark the server, attach the floating IP and the home
    /// volume; each step does what it can and the next goes on.
    #[tracing::instrument(skip_all)]
    pub(super) async fn settle_claim(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        let server = vm.server_id.as_deref().expect("a claimed VM has a server");
        // Claimed before the pool step saw its address or boot volume (the
        // VM asked for its job first): record them now.
        if vm.address.is_none() || vm.volume_ids.0.is_empty() {
            let Some(found) = cloud.get_server(server).await? else {
                self.fail(
                    vm,
                    "failed while building: the server disappeared from the cloud",
                )
                .await;
                return Ok(());
            };
            if vm.address.is_none()
                && let Some(address) = found.addresses.first()
            {
                store.set_address(vm.id, address).await?;
            }
            self.record_boot_volume(vm, &found).await?;
        }
        cloud
            .update_server(server, &vm.name, &self.owner_metadata(vm))
            .await?;
        self.attach_floating_ip(vm).await?;
        if !self.home_volume_attached(vm, server).await? {
            return Ok(());
        }
        store.set_claim_settled(vm.id).await?;
        store
            .append_event(
                vm.id,
                EventKind::State,
                &format!("the pool VM is now {} and yours", vm.name),
            )
            .await?;
        Ok(())
    }

    /// Attach the owner's home volume to the claimed server, and whether it
    /// is attached (`in-use`, with the server among its attachments).
    async fn home_volume_attached(&self, vm: &VmRecord, server: &str) -> Result<bool, StepError> {
        let Some(record) = self.inner.driver_store.home_volume(vm.owner_id).await? else {
            // Home volumes off, or none yet (`launch` claims only for
            // users who have one).
            return Ok(true);
        };
        let Some(volume) = self.inner.cloud.get_volume(&record.volume_id).await? else {
            return Err(StepError::Waiting(
                "your storage no longer exists in the cloud".into(),
            ));
        };
        if volume.attached_to.iter().any(|s| s == server) {
            return Ok(volume.status == VolumeStatus::InUse);
        }
        let zone = self.inner.settings.cloud.availability_zone.as_deref();
        match usable(&volume, zone) {
            HomeVolumeUse::Attach(id) => {
                self.inner.driver_store.check_lease().await?;
                self.inner.cloud.attach_volume(server, &id).await?;
                self.inner
                    .driver_store
                    .home_volume_attached(vm.owner_id, chrono::Utc::now())
                    .await?;
                Ok(false)
            }
            // Ours attaching (Cinder lists the attachment once done), or
            // the previous VM's still detaching.
            HomeVolumeUse::Wait(_) if volume.status == VolumeStatus::InUse => Ok(false),
            HomeVolumeUse::Wait(why) => Err(StepError::Waiting(why)),
            HomeVolumeUse::Refuse(why) => {
                self.fail(vm, &why).await;
                Ok(false)
            }
            HomeVolumeUse::Off => Ok(true),
        }
    }

    /// Delete the server of a claim that never answered, as a pool
    /// leftover, and once it is gone send the launch back to a cold boot.
    /// Only then: the cold boot looks for a server by the VM's id first,
    /// and must not find this one.
    #[tracing::instrument(skip_all)]
    pub(super) async fn give_up_claim(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        if let Some(server) = &vm.server_id
            && let Some(found) = cloud.get_server(server).await?
        {
            if found.status != ServerStatus::Deleting {
                store.check_lease().await?;
                cloud.delete_server(server).await?;
            }
            return Ok(());
        }
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
        let secs = self.inner.settings.pool.claim_timeout_seconds;
        if store
            .unclaim(
                vm.id,
                &format!(
                    "the pool VM did not ask for its job within {secs} s; it is deleted and a new VM boots for you"
                ),
            )
            .await?
        {
            tracing::warn!(vm = %vm.id, "claimed pool VM never answered: booting cold");
            self.wake();
        }
        Ok(())
    }
}
