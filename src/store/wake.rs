//! Waking the leader for work any replica records: on PostgreSQL a launch,
//! a deletion or a VM's progress report sends `NOTIFY stackbinder_wake`
//! (delivered when its transaction commits) and the leader `LISTEN`s, so it
//! steps at once instead of at its next poll. SQLite has one process, which
//! wakes its driver in memory (`Provisioner::wake`).

use super::{Backend, Store};
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel of the wake-ups.
pub const WAKE_CHANNEL: &str = "stackbinder_wake";

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
        let Backend::Postgres(pool) = self.backend() else {
            return;
        };
        loop {
            let lost = tokio::select! {
                () = cancel.cancelled() => return,
                lost = listen(pool, &wake) => lost,
            };
            let Err(e) = lost;
            tracing::warn!(error = %e, "not listening for wake-ups; the driver polls meanwhile");
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    }
}

async fn listen(pool: &sqlx::PgPool, wake: &impl Fn()) -> Result<Infallible, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(WAKE_CHANNEL).await?;
    // What was recorded before this listened, the next step finds.
    wake();
    loop {
        // `None`: the connection was lost and is made again; whatever was
        // sent meanwhile is lost, so look now.
        let _ = listener.try_recv().await?;
        wake();
    }
}
