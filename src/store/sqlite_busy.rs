//! SQLite's busy handler, ours so that waiting for the database is
//! counted. SQLite has one writer at a time: a statement that needs the
//! lock while another connection writes (or checkpoints) waits in the
//! connection's busy handler, and fails "database is locked" once it gives
//! up. It waits as SQLite's own handler (`busy_timeout`) does, 1, 2, 5, ...
//! up to 100 ms between tries: looking again every millisecond was
//! measured (benches/class_start.rs) and made a class start slower, the
//! waiting writers taking CPU from the one holding the lock. It runs on the
//! connection's own worker thread (sqlx gives each SQLite connection one),
//! so its sleep blocks no other task.

use prometheus_client::metrics::counter::Counter;
use sqlx::SqliteConnection;
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// What the busy handlers of a store's connections counted.
#[derive(Clone, Debug, Default)]
pub struct BusyCounts {
    /// Statements that found the database locked and waited.
    pub busy: Counter,
    /// Every further look at the lock while waiting.
    pub retries: Counter,
    /// Waits given up: the statement failed "database is locked".
    pub timeouts: Counter,
}

/// SQLite's own waits between tries (`sqliteDefaultBusyCallback`), in
/// milliseconds; the last one repeats.
const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// How long the first `tries` waits take together, in milliseconds.
fn waited_ms(tries: usize) -> u64 {
    let last = DELAYS_MS[DELAYS_MS.len() - 1];
    let scheduled: u64 = DELAYS_MS.iter().take(tries).sum();
    scheduled + tries.saturating_sub(DELAYS_MS.len()) as u64 * last
}

/// The wait before try `tries + 1`.
fn delay(tries: usize) -> Duration {
    Duration::from_millis(DELAYS_MS[tries.min(DELAYS_MS.len() - 1)])
}

struct Handler {
    counts: BusyCounts,
    /// Give up once the waits have taken this long.
    timeout_ms: u64,
}

extern "C" fn on_busy(context: *mut c_void, tries: c_int) -> c_int {
    // SAFETY: `context` is the `Handler` that `install` leaked for this
    // connection: never freed, never written to after it was made.
    let handler = unsafe { &*(context as *const Handler) };
    let tries = usize::try_from(tries).unwrap_or(0);
    if waited_ms(tries) >= handler.timeout_ms {
        handler.counts.timeouts.inc();
        return 0;
    }
    if tries == 0 {
        handler.counts.busy.inc();
    } else {
        handler.counts.retries.inc();
    }
    std::thread::sleep(delay(tries));
    1
}

/// Give `conn` the counting busy handler, waiting at most about `timeout`.
/// Its state (the counters, a few bytes) lives as long as the process: a
/// pool opens a handful of connections, and SQLite may call the handler
/// until the connection is closed, which sqlx does on its own thread.
pub(super) async fn install(
    conn: &mut SqliteConnection,
    counts: &BusyCounts,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let handler: &'static Handler = Box::leak(Box::new(Handler {
        counts: counts.clone(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }));
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection's handle, locked for us; the
    // handler's context outlives it (leaked above).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_busy_handler(
            db,
            Some(on_busy),
            std::ptr::from_ref(handler).cast_mut().cast::<c_void>(),
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "cannot install SQLite's busy handler (error {rc})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_sqlites_schedule_and_then_repeat_its_longest() {
        assert_eq!(waited_ms(0), 0);
        assert_eq!(waited_ms(3), 1 + 2 + 5);
        assert_eq!(waited_ms(12), 328);
        assert_eq!(waited_ms(14), 528);
        assert_eq!(delay(0), Duration::from_millis(1));
        assert_eq!(delay(40), Duration::from_millis(100));
    }
}
