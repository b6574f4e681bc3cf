//! How VMs are found: by id, by owner, all the live ones, and what the
//! status page and `/metrics` count.

use super::super::{Result, Store, on_pool};
use super::{SELECT_VM, VmRecord};
use crate::domain::{GithubId, LaunchPath, RepoSpec, VmId, VmState};
use chrono::{DateTime, Utc};

impl Store {
    pub async fn vm(&self, id: VmId) -> Result<Option<VmRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The owner's VM that is not deleted, if any.
    pub async fn live_vm_of(&self, owner: GithubId) -> Result<Option<VmRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.owner_id = $1 AND vms.state <> 'deleted'"
        ))
        .bind(owner)
        .fetch_optional(pool)
        .await?))
    }

    /// All VMs of an owner, newest first.
    pub async fn list_vms_of(&self, owner: GithubId) -> Result<Vec<VmRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.owner_id = $1 ORDER BY vms.created_at DESC"
        ))
        .bind(owner)
        .fetch_all(pool)
        .await?))
    }

    /// How many VMs are in each state (deleted ones excluded).
    pub async fn vm_counts(&self) -> Result<Vec<(VmState, i64)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT state, COUNT(*) FROM vms WHERE state <> 'deleted' GROUP BY state ORDER BY state",
        )
        .fetch_all(pool)
        .await?
        }))
    }

    /// Every VM that is not deleted, oldest first: what the driver watches.
    pub async fn live_vms(&self) -> Result<Vec<VmRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&format!(
            "{SELECT_VM} WHERE vms.state <> 'deleted' ORDER BY vms.created_at, vms.id"
        ))
        .fetch_all(pool)
        .await?))
    }

    /// How many launches wait before this one in the queue.
    pub async fn queue_ahead_of(&self, vm: &VmRecord) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM vms WHERE state = 'requested' AND (created_at < $1 OR (created_at = $1 AND id < $2))",
        )
        .bind(vm.created_at)
        .bind(vm.id)
        .fetch_one(pool)
        .await?
        }))
    }

    pub async fn list_vms(&self, include_deleted: bool) -> Result<Vec<VmRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&format!(
            "{SELECT_VM} WHERE $1 OR vms.state <> 'deleted' ORDER BY vms.created_at DESC"
        ))
        .bind(include_deleted)
        .fetch_all(pool)
        .await?))
    }

    /// When the last `limit` launches of `repo` on `path` that got ready
    /// were asked for and got ready, newest first: what the status page's
    /// estimate is made of.
    pub async fn recent_launch_times(
        &self,
        repo: &RepoSpec,
        path: LaunchPath,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT created_at, ready_at FROM vms \
             WHERE repo = $1 AND launch_path = $2 AND ready_at IS NOT NULL \
             ORDER BY ready_at DESC LIMIT $3"
        )
        .bind(repo.as_str())
        .bind(path)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?))
    }
}
