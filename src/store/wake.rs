//! Waking the leader for work any replica records: on PostgreSQL a launch,
//! a deletion or a VM's progress report sends `NOTIFY stackbinder_wake`
//! (delivered when its transaction commits) and the leader `LISTEN`s, so it
//! steps at once instead of at its next poll. SQLite has one process, which
//! wakes its driver in memory (`Provisioner::wake`).
//!
//! Likewise for a VM's held request for its job, which any replica may
//! hold: a new assignment (a claim, a deletion) is announced on
//! `stackbinder_assigned` with the VM's id, and every replica listens.

use super::{Backend, Result, Store};
use crate::domain::VmId;
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel of the wake-ups.
pub const WAKE_CHANNEL: &str = "stackbinder_wake";
/// The channel of changed assignments; the payload is the VM's id.
pub const ASSIGNED_CHANNEL: &str = "stackbinder_assigned";

/// How long a lost listener waits before it connects again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// In an open transaction `$tx` of `$store`: on PostgreSQL, wake the leader
/// when it commits (and not at all if it rolls back).
macro_rules! notify_wake {
    ($store:expr, $tx:expr) => {
        if matches!($store.backend(), $crate::store::Backend::Postgres(_)) {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind($crate::store::wake::WAKE_CHANNEL)
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(super) use notify_wake;

impl Store {
    /// Call `wake` for every wake-up any replica sends, until `cancel`: on
    /// PostgreSQL; on SQLite there is nothing to listen to. A lost
    /// connection is made again, and `wake` called, since what was sent
    /// meanwhile is lost.
    pub async fn listen_for_wakes(&self, wake: impl Fn(), cancel: &CancellationToken) {
        self.listen_until(WAKE_CHANNEL, |_| wake(), cancel).await;
    }

    /// On PostgreSQL, tell every replica that `vm`'s assignment changed, so
    /// that whichever holds its request for its job looks again now.
    pub async fn announce_assigned(&self, vm: VmId) -> Result<()> {
        if let Backend::Postgres(pool) = self.backend() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(ASSIGNED_CHANNEL)
                .bind(vm.to_string())
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Call `assigned` with the VM of every announced assignment until
    /// `cancel` (on PostgreSQL), and with `None` (look at every VM) once
    /// listening, also again after a lost connection.
    pub async fn listen_for_assignments(
        &self,
        assigned: impl Fn(Option<VmId>),
        cancel: &CancellationToken,
    ) {
        let on_payload = |payload: Option<&str>| match payload.map(str::parse) {
            Some(Ok(vm)) => assigned(Some(vm)),
            Some(Err(_)) => tracing::warn!(?payload, "an assignment announcement without a VM id"),
            None => assigned(None),
        };
        self.listen_until(ASSIGNED_CHANNEL, on_payload, cancel)
            .await;
    }

    /// Call `on` with each notification's payload on `channel`, and with
    /// `None` whenever what was sent may have been missed (on connecting),
    /// until `cancel`.
    async fn listen_until(
        &self,
        channel: &str,
        on: impl Fn(Option<&str>),
        cancel: &CancellationToken,
    ) {
        let Backend::Postgres(pool) = self.backend() else {
            return;
        };
        loop {
            let lost = tokio::select! {
                () = cancel.cancelled() => return,
                lost = listen(pool, channel, &on) => lost,
            };
            let Err(e) = lost;
            tracing::warn!(error = %e, channel, "not listening for notifications; polling meanwhile");
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    }
}

async fn listen(
    pool: &sqlx::PgPool,
    channel: &str,
    on: &impl Fn(Option<&str>),
) -> std::result::Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    // What was recorded before this listened, the next look finds.
    on(None);
    loop {
        // `None`: the connection was lost and is made again; whatever was
        // sent meanwhile is lost, so look now.
        match listener.try_recv().await? {
            Some(notification) => on(Some(notification.payload())),
            None => on(None),
        }
    }
}
