//! SQLite's busy handler, ours so that waiting for the database is
//! counted. SQLite has one writer at a time: a statement that needs the
//! lock while another connection writes (or checkpoints) waits in the
//! connection's busy handler, and fails "database is locked" once it gives
//! up. SQLite's own handler (`busy_timeout`) sleeps 1, 2, 5, ... up to 100
//! ms between tries, so a writer may sleep on long after the lock is free;
//! this one looks again every millisecond. It runs on the connection's own
//! worker thread (sqlx gives each SQLite connection one), so its sleep
//! blocks no other task.

use prometheus_client::metrics::counter::Counter;
use sqlx::SqliteConnection;
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// What the busy handlers of a store's connections counted.
#[derive(Clone, Debug, Default)]
pub struct BusyCounts {
    /// Statements that found the database locked and waited.
    pub busy: Counter,
    /// Every further look at the lock while waiting (one a millisecond).
    pub retries: Counter,
    /// Waits given up: the statement failed "database is locked".
    pub timeouts: Counter,
}

const POLL: Duration = Duration::from_millis(1);

struct Handler {
    counts: BusyCounts,
    /// Tries of `POLL` each: the wait lasts at least `tries * POLL`.
    max_tries: c_int,
}

extern "C" fn on_busy(context: *mut c_void, tries: c_int) -> c_int {
    // SAFETY: `context` is the `Handler` that `install` leaked for this
    // connection: never freed, never written to after it was made.
    let handler = unsafe { &*(context as *const Handler) };
    if tries >= handler.max_tries {
        handler.counts.timeouts.inc();
        return 0;
    }
    if tries == 0 {
        handler.counts.busy.inc();
    } else {
        handler.counts.retries.inc();
    }
    std::thread::sleep(POLL);
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
    let max_tries = c_int::try_from(timeout.as_millis() / POLL.as_millis()).unwrap_or(c_int::MAX);
    let handler: &'static Handler = Box::leak(Box::new(Handler {
        counts: counts.clone(),
        max_tries,
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
