//! The leader's storage job: home volumes whose owner was revoked with
//! `--purge` while a VM still held them, and volumes no VM has used for
//! `storage.retention_days`, are deleted through the same path as "delete
//! my storage" (`Provisioner::delete_storage`). Never one whose owner has a
//! VM; one still attached is refused by Cinder and tried again later.

use super::{Provisioner, StorageError};
use crate::domain::{GithubId, Login};
use crate::store::{HomeVolumeOfUser, StoreError};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

/// Why a home volume is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Unused since then, longer than `storage.retention_days`.
    Unused(DateTime<Utc>),
    /// Its owner was revoked with `--purge`.
    Purged,
}

/// The volumes to delete now, of `volumes`; `with_vm`: the owners of a VM
/// that is not deleted (their volume is never due).
pub fn due(
    volumes: &[HomeVolumeOfUser],
    with_vm: &HashSet<GithubId>,
    retention: Option<Duration>,
    now: DateTime<Utc>,
) -> Vec<(GithubId, Login, Cleanup)> {
    volumes
        .iter()
        .filter(|v| !with_vm.contains(&v.volume.github_id))
        .filter_map(|v| {
            let why = why(v, retention, now)?;
            Some((v.volume.github_id, v.login.clone(), why))
        })
        .collect()
}

fn why(
    owned: &HomeVolumeOfUser,
    retention: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<Cleanup> {
    let volume = &owned.volume;
    // Allowed again, they keep their work, also through a later
    // revocation without a purge.
    if owned.purge_pending() {
        return Some(Cleanup::Purged);
    }
    volume
        .deleted_after(retention)
        .filter(|due| *due <= now)
        .map(|_| Cleanup::Unused(volume.unused_since()))
}

impl Provisioner {
    /// Delete every home volume that is due; a failure is logged and the
    /// volume tried again at the next run. The driver runs it as often as
    /// the reconciler.
    #[tracing::instrument(name = "storage cleanup", skip_all)]
    pub async fn clean_up_storage(&self) -> Result<(), StoreError> {
        if self.inner.settings.storage.home_volume_gb().is_none() {
            return Ok(());
        }
        let store = &self.inner.driver_store;
        let volumes = store.home_volumes().await?;
        let with_vm: HashSet<GithubId> = store
            .live_vms()
            .await?
            .into_iter()
            .map(|vm| vm.owner_id)
            .collect();
        let retention = self.inner.settings.storage.retention();
        for (owner, login, why) in due(&volumes, &with_vm, retention, Utc::now()) {
            // Deleting is for the leader only, as of now.
            store.check_lease().await?;
            match self.delete_storage(owner).await {
                Ok(gone) => {
                    tracing::info!(user = %login, volume = %gone.volume_id, ?why, "storage deleted")
                }
                Err(StorageError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(user = %login, error = %e, ?why, "cannot delete storage yet")
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HomeVolume;

    fn volume(owner: i64, unused_days: i64, revoked: bool) -> HomeVolumeOfUser {
        let since = Utc::now() - Duration::days(unused_days);
        HomeVolumeOfUser {
            login: Login::parse(&format!("user{owner}")).unwrap(),
            revoked_at: revoked.then_some(since),
            volume: HomeVolume {
                github_id: GithubId(owner),
                volume_id: format!("v{owner}"),
                size_gb: 10,
                availability_zone: None,
                created_at: since - Duration::days(1),
                last_attached_at: Some(since),
                used_bytes: None,
                total_bytes: None,
                usage_reported_at: None,
                purge_requested_at: revoked.then_some(since),
                last_vm_gone_at: None,
            },
        }
    }

    #[test]
    fn a_volume_unused_past_the_retention_is_due_unless_its_owner_has_a_vm() {
        let volumes = [
            volume(1, 31, false),
            volume(2, 29, false),
            volume(3, 90, false),
        ];
        let with_vm = HashSet::from([GithubId(3)]);
        let due = due(&volumes, &with_vm, Some(Duration::days(30)), Utc::now());
        let owners: Vec<i64> = due.iter().map(|(o, _, _)| o.0).collect();
        assert_eq!(owners, [1]);
        assert!(matches!(due[0].2, Cleanup::Unused(_)));
        assert!(
            super::due(&volumes, &HashSet::new(), None, Utc::now()).is_empty(),
            "retention 0 keeps every volume"
        );
    }

    #[test]
    fn a_purge_is_done_once_no_vm_holds_it_and_only_for_the_revocation_it_came_with() {
        let mut allowed_again = volume(2, 0, true);
        allowed_again.revoked_at = None;
        let mut revoked_again = volume(4, 0, true);
        revoked_again.revoked_at = Some(Utc::now());
        let volumes = [
            volume(1, 0, true),
            allowed_again,
            volume(3, 0, true),
            revoked_again,
        ];
        let with_vm = HashSet::from([GithubId(3)]);
        let due = due(&volumes, &with_vm, None, Utc::now());
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0, &due[0].2), (GithubId(1), &Cleanup::Purged));
    }
}
