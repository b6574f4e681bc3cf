//! When SQLite copies the write-ahead log back into the database. By
//! default the connection whose commit takes the log past 1000 pages does
//! it there and then, and syncs the file: that request waits for the disk,
//! and under a class start the one unlucky request in a few hundred does.
//! Here no request checkpoints (`wal_autocheckpoint = 0` on every
//! connection); a background task does, every second, in PASSIVE mode,
//! which never waits for or blocks a writer or a reader. It ends when the
//! last clone of the store is dropped; SQLite checkpoints once more when
//! the last connection closes.

use sqlx::SqlitePool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

const EVERY: Duration = Duration::from_secs(1);

/// Stops the checkpoints when the last holder drops it.
#[derive(Clone, Debug)]
pub(super) struct Checkpoints {
    _stop: Arc<DropGuard>,
}

/// Checkpoint `pool`'s database every second until the result is dropped.
pub(super) fn start(pool: SqlitePool) -> Checkpoints {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "cannot checkpoint the database's write-ahead log");
            }
        }
    });
    Checkpoints {
        _stop: Arc::new(stop.drop_guard()),
    }
}
