//! Each user's home volume: the Cinder volume that outlives their VMs.
//! One row per user, made once the volume exists in the cloud.

use super::{Result, Store, StoreError, on_pool};
use crate::domain::{GithubId, Login};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HomeVolume {
    pub github_id: GithubId,
    pub volume_id: String,
    pub size_gb: i64,
    /// Cinder's zone of the volume, as it answered when the volume was made.
    pub availability_zone: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When a server was last created with it attached.
    pub last_attached_at: Option<DateTime<Utc>>,
    /// The filesystem's used and total bytes as a VM last reported them.
    pub used_bytes: Option<i64>,
    pub total_bytes: Option<i64>,
    pub usage_reported_at: Option<DateTime<Utc>>,
    /// Revoking the owner asked for it to be deleted once no VM holds it.
    pub purge_requested_at: Option<DateTime<Utc>>,
    /// When the owner's last VM was deleted (or its failed launch torn
    /// down), from their VMs' records.
    pub last_vm_gone_at: Option<DateTime<Utc>>,
}

impl HomeVolume {
    /// Since when no VM has used it: its making, its last attachment or
    /// the end of its owner's last VM, whichever is latest.
    pub fn unused_since(&self) -> DateTime<Utc> {
        self.created_at
            .max(self.last_attached_at.unwrap_or(self.created_at))
            .max(self.last_vm_gone_at.unwrap_or(self.created_at))
    }

    /// When `storage.retention_days` deletes it if it stays unused.
    pub fn deleted_after(&self, retention: Option<chrono::Duration>) -> Option<DateTime<Utc>> {
        retention.map(|keep| self.unused_since() + keep)
    }
}

impl HomeVolumeOfUser {
    /// Revoking the owner asked for the storage to go (`--purge`): it holds
    /// only for that revocation, not after they are allowed again.
    pub fn purge_pending(&self) -> bool {
        self.volume
            .purge_requested_at
            .zip(self.revoked_at)
            .is_some_and(|(purge, revoked)| purge >= revoked)
    }
}

/// Every column of a home volume, with when its owner's last VM ended.
const SELECT: &str = "SELECT h.*, (SELECT MAX(COALESCE(v.deleted_at, v.released_at)) FROM vms v
     WHERE v.owner_id = h.github_id) AS last_vm_gone_at FROM home_volumes h";

/// A home volume and its owner's login, for the admin's list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HomeVolumeOfUser {
    pub login: Login,
    /// Set while the owner is revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub volume: HomeVolume,
}

impl Store {
    pub async fn home_volume(&self, owner: GithubId) -> Result<Option<HomeVolume>> {
        let sql = format!("{SELECT} WHERE h.github_id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(owner)
            .fetch_optional(pool)
            .await)?)
    }

    /// Record `owner`'s volume; a second record of the same user keeps the
    /// first (two steps racing on one launch cannot make it two).
    pub async fn record_home_volume(
        &self,
        owner: GithubId,
        volume_id: &str,
        size_gb: u32,
        availability_zone: Option<&str>,
    ) -> Result<HomeVolume> {
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO home_volumes (github_id, volume_id, size_gb, availability_zone, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (github_id) DO NOTHING",
        )
        .bind(owner)
        .bind(volume_id)
        .bind(i64::from(size_gb))
        .bind(availability_zone)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(drop)
        })?;
        // Gone again only if a deletion of the storage raced this record.
        self.home_volume(owner)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    pub async fn home_volume_attached(&self, owner: GithubId, at: DateTime<Utc>) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE home_volumes SET last_attached_at = $1 WHERE github_id = $2"
        )
        .bind(at)
        .bind(owner)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Every user's home volume, by login.
    pub async fn home_volumes(&self) -> Result<Vec<HomeVolumeOfUser>> {
        let sql = format!(
            "SELECT u.login, u.revoked_at, w.* FROM ({SELECT}) w
             JOIN users u ON u.github_id = w.github_id ORDER BY u.login"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)?)
    }

    /// What the VM `vm` reported of its owner's home volume's filesystem.
    pub async fn home_volume_usage(
        &self,
        vm: crate::domain::VmId,
        used_bytes: u64,
        total_bytes: u64,
    ) -> Result<()> {
        // Beyond i64 no disk is: clamped rather than refused.
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        on_pool!(self, |pool| sqlx::query(
            "UPDATE home_volumes SET used_bytes = $1, total_bytes = $2, usage_reported_at = $3
             WHERE github_id = (SELECT owner_id FROM vms WHERE id = $4)"
        )
        .bind(bytes(used_bytes))
        .bind(bytes(total_bytes))
        .bind(Utc::now())
        .bind(vm)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Delete `owner`'s volume as soon as no VM of theirs holds it (while
    /// they stay revoked).
    pub async fn request_home_volume_purge(&self, owner: GithubId) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE home_volumes SET purge_requested_at = $1 WHERE github_id = $2"
        )
        .bind(Utc::now())
        .bind(owner)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The volume ids of every home volume: never an orphan.
    pub async fn home_volume_ids(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT volume_id FROM home_volumes"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Forget `owner`'s volume once it is deleted in the cloud.
    pub async fn forget_home_volume(&self, owner: GithubId) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM home_volumes WHERE github_id = $1"
        )
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }
}
