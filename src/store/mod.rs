//! The embedded store: SQLite through sqlx. Every state change of a VM is
//! written here before the next step is taken, so a restart resumes it.

mod access_names;
mod activity;
mod events;
mod installation;
mod links;
mod sqlite_busy;
mod tokens;
mod users;
mod vms;

pub use access_names::AccessList;
pub use events::{EventKind, VmEvent};
pub use links::{LinkState, LinkUse, NewLink, RegistrationLink};
pub use sqlite_busy::BusyCounts;
pub use tokens::{ApiToken, NewToken};
pub use users::{AllowOutcome, Imported, Invite, Registration, User};
pub use vms::{CallbackOutcome, NewVm, VmRecord};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("this user already has a VM")]
    AlreadyHasVm,
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    busy: BusyCounts,
}

/// How long a statement waits for SQLite's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Open (creating if needed) and migrate the database at `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        let open_err = |source| StoreError::Open {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Until `after_connect` puts the counting handler in its place
            // (the pragmas of a new connection may wait too).
            .busy_timeout(BUSY_TIMEOUT);
        let busy = BusyCounts::default();
        let counts = busy.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _| {
                let counts = counts.clone();
                Box::pin(async move { sqlite_busy::install(conn, &counts, BUSY_TIMEOUT).await })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, busy })
    }

    /// How often statements waited for SQLite's lock (for `/metrics`).
    pub fn busy_counts(&self) -> &BusyCounts {
        &self.busy
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Cheap liveness check for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
