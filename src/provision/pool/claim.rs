//! A launch with the pool on takes a ready pool VM if there is one: the
//! claim is one store transaction (`Store::claim_pool_vm`), the cloud
//! steps follow in the driver (`driver/claimed.rs`), and with home volumes
//! on the job too, once the owner's volume (made on their first launch) is
//! attached. No ready VM: the launch boots its own, counted as a miss.

use crate::cloud_init::Assignment;
use crate::domain::Login;
use crate::provision::Provisioner;
use crate::secret;
use crate::store::{NewVm, StoreError, VmRecord};

impl Provisioner {
    /// Claim a ready pool VM for `new` of `login`, with its job (unless
    /// home volumes are on: the driver gives it once the volume is
    /// attached) and a rotated secret;
    /// `None` when the pool is off or has none ready (then the caller
    /// records a cold launch).
    pub(in crate::provision) async fn claim_from_pool(
        &self,
        login: &Login,
        new: NewVm<'_>,
    ) -> Result<Option<VmRecord>, StoreError> {
        if !self.inner.settings.pool.enabled() {
            return Ok(None);
        }
        let store = &self.inner.store;
        let request = new.request;
        // Pool VMs are of the default profile: a launch of another boots
        // its own (`launch` has filled in the default's name).
        let default = self.inner.settings.profiles.default_profile();
        if request.profile.as_ref() != default.map(|p| &p.name) {
            self.inner.metrics.pool_missed();
            return Ok(None);
        }
        // A claim starts a VM without passing the queue: a repository at
        // its cap (`launch.repo_caps`) waits there like any launch.
        if super::super::capacity::repo_cap(&request.repo, &self.inner.settings).is_some()
            && !super::super::capacity::repo_has_room(
                &store.live_vms().await?,
                &request.repo,
                &self.inner.settings,
            )
        {
            self.inner.metrics.pool_missed();
            return Ok(None);
        }
        // With home volumes on, the job waits for the owner's volume, which
        // the driver makes on a first launch and attaches
        // (`driver/claimed.rs`): the job names the volume attached, which
        // may not be the one recorded now (deleted outside stackbinder, it
        // is made anew), and the VM looks for its disk as soon as it has
        // the job.
        let volume_first = self.inner.settings.storage.home_volume_gb().is_some();
        let assignment = Assignment {
            login: login.to_string(),
            repo: request.repo.to_string(),
            git_ref: request.git_ref.to_string(),
            url_path: request.url_path.to_string(),
            jupyter_token: new.jupyter_token.to_owned(),
            gpu: request
                .profile
                .as_ref()
                .and_then(|name| self.inner.settings.profiles.get(name))
                .is_some_and(|p| p.gpu),
            home_volume_id: None,
            callback_secret: None,
        };
        let assignment = (!volume_first).then_some(&assignment);
        match store
            .claim_pool_vm(new, assignment, &secret::generate())
            .await?
        {
            Some(claimed) => {
                tracing::info!(vm = %claimed.vm.id, volume_first, "launch claimed a pool VM");
                self.inner.metrics.pool_claimed();
                if assignment.is_some() {
                    // The VM's held long-poll answers now, with its job.
                    self.assignment_ready(claimed.vm.id);
                }
                Ok(Some(claimed.vm))
            }
            None => {
                self.inner.metrics.pool_missed();
                Ok(None)
            }
        }
    }
}
