//! Deleting a user's home volume, on their own request (the status page)
//! or an admin's (`stackbinder storage delete`). Never while a VM of
//! theirs may use it, and never a volume that does not carry this
//! installation's id and the user's `stackbinder_home` mark.

use super::Provisioner;
use crate::cloud::{CloudError, META_HOME};
use crate::domain::GithubId;
use crate::store::{HomeVolume, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("there is no storage to delete")]
    NoStorage,
    #[error("delete your VM first: it uses your storage")]
    VmUsesIt,
    #[error("your storage is still detaching from your VM; try again in a minute")]
    StillDetaching,
    #[error(
        "volume {0} does not carry this installation's marks: it is left alone (delete it by hand if it is yours)"
    )]
    NotOurs(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// What purging a revoked user's storage did.
#[derive(Debug)]
pub enum Purge {
    /// They had none.
    Nothing,
    Deleted(HomeVolume),
    /// A VM of theirs still holds it: the storage job deletes it once it
    /// is free (while they stay revoked).
    Later(HomeVolume),
}

impl Provisioner {
    /// Delete the storage of `owner`, just revoked, now or once their VM
    /// has let go of it.
    pub async fn purge_storage(&self, owner: GithubId) -> Result<Purge, StorageError> {
        match self.delete_storage(owner).await {
            Ok(gone) => Ok(Purge::Deleted(gone)),
            Err(StorageError::NoStorage) => Ok(Purge::Nothing),
            Err(StorageError::VmUsesIt | StorageError::StillDetaching) => {
                let store = &self.inner.store;
                store.request_home_volume_purge(owner).await?;
                let record = store.home_volume(owner).await?;
                Ok(record.map_or(Purge::Nothing, Purge::Later))
            }
            Err(e) => Err(e),
        }
    }

    /// Delete `owner`'s home volume and forget it; what it was.
    #[tracing::instrument(name = "delete storage", skip(self))]
    pub async fn delete_storage(&self, owner: GithubId) -> Result<HomeVolume, StorageError> {
        let store = &self.inner.store;
        let record = store
            .home_volume(owner)
            .await?
            .ok_or(StorageError::NoStorage)?;
        // A VM being deleted has let go of it once it is deleted; a failed
        // one whose server is gone no longer holds it.
        if let Some(vm) = store.live_vm_of(owner).await?
            && vm.released_at.is_none()
        {
            return Err(StorageError::VmUsesIt);
        }
        if let Some(volume) = self.inner.cloud.get_volume(&record.volume_id).await? {
            let marked = volume.metadata.get(META_HOME).map(String::as_str)
                == Some(owner.to_string().as_str());
            if !self.inner.installation.made(&volume.metadata) || !marked {
                return Err(StorageError::NotOurs(record.volume_id));
            }
            match self.inner.cloud.delete_volume(&record.volume_id).await {
                Ok(()) => {}
                Err(CloudError::VolumeBusy) => return Err(StorageError::StillDetaching),
                Err(e) => return Err(e.into()),
            }
        }
        store.forget_home_volume(owner).await?;
        tracing::info!(volume = %record.volume_id, "storage deleted");
        Ok(record)
    }
}
