//! Leadership leases (see `crate::lease`): the row each replica reads and
//! conditionally writes, and the fence the leader's writes are checked
//! against.

use super::{Result, Store, StoreError, on_pool};
use crate::lease::{Epoch, Fence, Leadership, Observed, ReplicaId, Role};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Begin a write transaction on `$pool` (the store's pool, as `on_pool!`
/// binds it). When the store is fenced (`Store::fenced`), the transaction
/// first finds the lease still held at the fence's epoch, or the enclosing
/// function returns `StoreError::Fenced`: the check and the write commit
/// together or not at all. On PostgreSQL the lease row is read `FOR SHARE`,
/// so a take-over waits until this write is committed and the new leader
/// reads it; on SQLite `BEGIN IMMEDIATE` holds the write lock from the
/// start (and a read before a write needs it, see `apply_callback`).
macro_rules! begin_write {
    ($store:expr, $pool:expr) => {{
        match $store.write_fence()? {
            None => $pool.begin().await?,
            Some(fence) => {
                let (begin, check) = $store.fenced_sql();
                let mut tx = $pool.begin_with(begin).await?;
                let held: Option<i64> = sqlx::query_scalar(check)
                    .bind(fence.lease)
                    .bind(fence.holder.as_str())
                    .bind(fence.epoch.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                if held.is_none() {
                    return Err($crate::store::StoreError::Fenced { epoch: fence.epoch });
                }
                tx
            }
        }
    }};
}
pub(super) use begin_write;

const HOLDS: &str = "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3";

impl Store {
    /// This store, with every write of a VM row (and of its events)
    /// checked against `fence` (tests; the driver's follows its role).
    pub fn fenced(&self, fence: Fence) -> Store {
        // The receiver keeps the last value after the sender is gone.
        let (_, role) = watch::channel(Role::Leader(fence));
        Store {
            fence: Some(role),
            ..self.clone()
        }
    }

    /// This store, with every write of a VM row (and of its events)
    /// checked against the lease this replica holds at the time of the
    /// write, and refused while it holds none: what the driver writes
    /// through.
    pub fn fenced_by(&self, leadership: &Leadership) -> Store {
        Store {
            fence: Some(leadership.subscribe()),
            ..self.clone()
        }
    }

    /// What a write must be checked against: nothing (an unfenced store),
    /// else the fence of the lease held now, else `NotLeader`.
    pub(super) fn write_fence(&self) -> Result<Option<Fence>> {
        let Some(role) = &self.fence else {
            return Ok(None);
        };
        match &*role.borrow() {
            Role::Leader(fence) => Ok(Some(fence.clone())),
            Role::Standby => Err(StoreError::NotLeader),
        }
    }

    /// Before a call that creates or deletes something in the cloud: the
    /// database still shows the lease held at this store's fence. Always
    /// true of an unfenced store.
    pub async fn check_lease(&self) -> Result<()> {
        match self.write_fence()? {
            None => Ok(()),
            Some(fence) if self.holds_lease(&fence).await? => Ok(()),
            Some(fence) => Err(StoreError::Fenced { epoch: fence.epoch }),
        }
    }

    /// How a fenced write transaction begins, and its check of the lease.
    pub(super) fn fenced_sql(&self) -> (&'static str, &'static str) {
        match self.backend {
            super::Backend::Sqlite(_) => ("BEGIN IMMEDIATE", HOLDS),
            super::Backend::Postgres(_) => (
                "BEGIN",
                "SELECT epoch FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE",
            ),
        }
    }

    /// The lease row, if there is one, and the database's time: on
    /// PostgreSQL the clock all replicas share; SQLite has one process,
    /// whose clock it is.
    pub async fn observe_lease(&self, name: &str) -> Result<(Option<Observed>, DateTime<Utc>)> {
        let now = on_pool!(
            self,
            sqlite | _pool | Utc::now(),
            postgres | pool | sqlx::query_scalar("SELECT now()").fetch_one(pool).await?
        );
        let row: Option<(String, i64, DateTime<Utc>)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT holder, epoch, expires_at FROM leases WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(pool)
        .await?);
        let observed = row.map(|(holder, epoch, expires_at)| Observed {
            holder: ReplicaId::from_stored(holder),
            epoch: Epoch::from_stored(epoch),
            expires_at,
        });
        Ok((observed, now))
    }

    /// Take the lease over at `epoch`, if it is still as `replacing` was
    /// read (none: no row yet). False when another replica got there first.
    pub async fn take_lease(
        &self,
        name: &'static str,
        me: &ReplicaId,
        replacing: Option<&Observed>,
        epoch: Epoch,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let taken = on_pool!(self, |pool| match replacing {
            None => sqlx::query(
                "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(me.as_str())
            .bind(epoch.get())
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected(),
            Some(old) => sqlx::query(
                "UPDATE leases SET holder = $1, epoch = $2, expires_at = $3
                 WHERE name = $4 AND holder = $5 AND epoch = $6",
            )
            .bind(me.as_str())
            .bind(epoch.get())
            .bind(expires_at)
            .bind(name)
            .bind(old.holder.as_str())
            .bind(old.epoch.get())
            .execute(pool)
            .await?
            .rows_affected(),
        });
        Ok(taken == 1)
    }

    /// Push the expiry of the lease `fence` holds back to `expires_at`;
    /// false when it is not held so any more.
    pub async fn renew_lease(&self, fence: &Fence, expires_at: DateTime<Utc>) -> Result<bool> {
        let renewed = on_pool!(self, |pool| sqlx::query(
            "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND epoch = $4"
        )
        .bind(expires_at)
        .bind(fence.lease)
        .bind(fence.holder.as_str())
        .bind(fence.epoch.get())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(renewed == 1)
    }

    /// Let the lease go at once (a clean shutdown), so another replica, or
    /// this one restarted, need not wait for it to expire. The epoch stays:
    /// the next holder takes it over with a greater one.
    pub async fn release_lease(&self, fence: &Fence) -> Result<()> {
        self.renew_lease(fence, DateTime::UNIX_EPOCH)
            .await
            .map(drop)
    }

    /// Whether the lease is still held at the fence's epoch: asked before
    /// each call that creates or deletes something in the cloud.
    pub async fn holds_lease(&self, fence: &Fence) -> Result<bool> {
        let held: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(HOLDS)
            .bind(fence.lease)
            .bind(fence.holder.as_str())
            .bind(fence.epoch.get())
            .fetch_optional(pool)
            .await?);
        Ok(held.is_some())
    }
}
