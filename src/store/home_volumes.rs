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
}

/// A home volume and its owner's login, for the admin's list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HomeVolumeOfUser {
    pub login: Login,
    #[sqlx(flatten)]
    pub volume: HomeVolume,
}

impl Store {
    pub async fn home_volume(&self, owner: GithubId) -> Result<Option<HomeVolume>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM home_volumes WHERE github_id = $1"
        )
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
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT u.login, h.* FROM home_volumes h JOIN users u ON u.github_id = h.github_id
             ORDER BY u.login",
        )
        .fetch_all(pool)
        .await)?)
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
