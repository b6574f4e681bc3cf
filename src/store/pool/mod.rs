//! The warm pool's VMs (`pool_vms`): booted ahead of demand, with no owner
//! yet. Every write but the VM's own first poll is the driver's (fenced);
//! a launch takes one in `claim`.

mod claim;

pub use claim::Claimed;

use super::leases::begin_write;
use super::{Result, Store, on_pool};
use crate::domain::VmId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

/// Where a pool VM is. A claimed one is no longer here: it is a `vms` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// The row is written and its server asked for (or about to be).
    Creating,
    /// The server exists; the VM has not asked for its assignment yet.
    Booting,
    /// The VM asks for its assignment: a launch may claim it.
    Ready,
    /// Its server and boot volume are being removed (`reason` says why).
    Deleting,
}

impl PoolState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Booting => "booting",
            Self::Ready => "ready",
            Self::Deleting => "deleting",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PoolVm {
    pub id: VmId,
    pub name: String,
    pub state: PoolState,
    pub server_id: Option<String>,
    pub address: Option<String>,
    pub volume_ids: Json<Vec<String>>,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// The repositories it builds ahead, `repo@ref`.
    pub prebuilt: Json<Vec<String>>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
}

/// A pool VM about to be asked of the cloud.
pub struct NewPoolVm<'a> {
    pub id: VmId,
    pub name: &'a str,
    pub secret_hash: &'a [u8],
    pub prebuilt: &'a [String],
}

impl Store {
    /// Record a pool VM before its server is asked for.
    pub async fn insert_pool_vm(&self, new: NewPoolVm<'_>) -> Result<()> {
        let now = Utc::now();
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query(
                "INSERT INTO pool_vms (id, name, state, secret_hash, prebuilt, created_at, updated_at)
                 VALUES ($1, $2, 'creating', $3, $4, $5, $5)",
            )
            .bind(new.id)
            .bind(new.name)
            .bind(new.secret_hash)
            .bind(Json(new.prebuilt))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every pool VM, oldest first.
    pub async fn pool_vms(&self) -> Result<Vec<PoolVm>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM pool_vms ORDER BY created_at, id"
        )
        .fetch_all(pool)
        .await?))
    }

    /// The hash of a pool VM's boot secret; `None` for a VM not in the pool.
    pub async fn pool_secret_hash(&self, id: VmId) -> Result<Option<Vec<u8>>> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT secret_hash FROM pool_vms WHERE id = $1 AND state <> 'deleting'"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The server Nova made for a creating pool VM: it boots.
    pub async fn set_pool_server(&self, id: VmId, server_id: &str) -> Result<bool> {
        self.pool_update(
            "UPDATE pool_vms SET server_id = $1, state = 'booting', updated_at = $2
             WHERE id = $3 AND state = 'creating'",
            id,
            server_id,
        )
        .await
    }

    pub async fn set_pool_address(&self, id: VmId, address: &str) -> Result<bool> {
        self.pool_update(
            "UPDATE pool_vms SET address = $1, updated_at = $2 WHERE id = $3",
            id,
            address,
        )
        .await
    }

    pub async fn set_pool_volume_ids(&self, id: VmId, volumes: &[String]) -> Result<bool> {
        self.pool_update(
            "UPDATE pool_vms SET volume_ids = $1, updated_at = $2 WHERE id = $3",
            id,
            Json(volumes),
        )
        .await
    }

    /// The VM asked for its assignment: it is ready to be claimed (the
    /// first time; later polls change nothing). Not the driver's write: the
    /// VM's request, on any replica.
    pub async fn pool_vm_polled(&self, id: VmId) -> Result<bool> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| sqlx::query(
            "UPDATE pool_vms SET state = 'ready', ready_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'booting'"
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
            == 1))
    }

    /// Send a pool VM to deletion, saying why (unless it is already going).
    pub async fn delete_pool_vm(&self, id: VmId, reason: &str) -> Result<bool> {
        self.pool_update(
            "UPDATE pool_vms SET state = 'deleting', reason = $1, updated_at = $2
             WHERE id = $3 AND state <> 'deleting'",
            id,
            reason,
        )
        .await
    }

    /// A deleted pool VM's cloud resources are gone: forget it.
    pub async fn forget_pool_vm(&self, id: VmId) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            sqlx::query("DELETE FROM pool_vms WHERE id = $1 AND state = 'deleting'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Pool VMs that are ready to be claimed (for `/metrics` and the launch
    /// page's room).
    pub async fn pool_ready_count(&self) -> Result<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM pool_vms WHERE state = 'ready'"
        )
        .fetch_one(pool)
        .await?))
    }

    async fn pool_update<'q, T>(&self, sql: &'q str, id: VmId, value: T) -> Result<bool>
    where
        T: 'q
            + Send
            + sqlx::Encode<'q, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        Ok(on_pool!(self, |pool| {
            let mut tx = begin_write!(self, pool);
            let moved = sqlx::query(sql)
                .bind(value)
                .bind(Utc::now())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            tx.commit().await?;
            moved
        }))
    }
}
