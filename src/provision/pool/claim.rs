//! A launch with the pool on takes a ready pool VM if there is one: the
//! claim is one store transaction (`Store::claim_pool_vm`), the cloud
//! steps follow in the driver (`driver/claimed.rs`). No ready VM: the
//! launch boots its own, counted as a miss.

use crate::provision::Provisioner;
use crate::secret;
use crate::store::{NewVm, StoreError, VmRecord};

impl Provisioner {
    /// Claim a ready pool VM for `new`; `None` when the pool is off or has
    /// none ready (then the caller records a cold launch).
    pub(in crate::provision) async fn claim_from_pool(
        &self,
        new: NewVm<'_>,
    ) -> Result<Option<VmRecord>, StoreError> {
        if !self.inner.settings.pool.enabled() {
            return Ok(None);
        }
        let store = &self.inner.store;
        // A first launch makes the home volume, which a server booted
        // without it can get only once it exists: such a launch boots cold.
        if self.inner.settings.storage.home_volume_gb().is_some()
            && store.home_volume(new.owner).await?.is_none()
        {
            self.inner.metrics.pool_missed();
            return Ok(None);
        }
        let callback_secret = secret::generate();
        match store
            .claim_pool_vm(new, &secret::hash(&callback_secret))
            .await?
        {
            Some(claimed) => {
                tracing::info!(vm = %claimed.vm.id, "launch claimed a pool VM");
                self.inner.metrics.pool_claimed();
                Ok(Some(claimed.vm))
            }
            None => {
                self.inner.metrics.pool_missed();
                Ok(None)
            }
        }
    }
}
