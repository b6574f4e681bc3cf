//! The store: SQLite (embedded, the default) or PostgreSQL (shared by
//! several replicas), through sqlx. Every state change of a VM is written
//! here before the next step is taken, so a restart resumes it.
//!
//! Not sqlx's `Any`: it does not translate placeholders and decodes through
//! a lowest common type. Each query is written once and expanded for each
//! pool by `on_pool!` (`$N` placeholders work in both), twice only where
//! the dialects differ.

mod access_generation;
mod access_names;
mod activity;
mod events;
mod home_volumes;
mod installation;
mod leases;
mod links;
mod pool;
mod sqlite_busy;
mod tokens;
mod users;
mod vms;
mod wake;

pub use access_generation::AccessGeneration;
pub use access_names::AccessList;
pub use events::{EventKind, VmEvent};
pub use home_volumes::{HomeVolume, HomeVolumeOfUser};
pub use links::{LinkState, LinkUse, NewLink, RegistrationLink};
pub use pool::{Claimed, NewPoolVm, PoolState, PoolVm};
pub use sqlite_busy::BusyCounts;
pub use tokens::{ApiToken, NewToken};
pub use users::{AllowOutcome, Imported, Invite, Registration, User};
pub(crate) use vms::assignment_json;
pub use vms::{AssignmentLookup, CallbackOutcome, NewVm, SecretUse, VmRecord, VmSecrets};
pub use wake::WAKE_CHANNEL;

use sqlx::postgres::PgPoolOptions;
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
    /// A write of the driver found the lease held by another replica, or at
    /// a later epoch: this replica no longer drives and must not move a VM.
    #[error(
        "the driver lease was taken over from this replica (it held epoch {epoch}): another replica drives"
    )]
    Fenced { epoch: crate::lease::Epoch },
    /// A write of the driver while this replica does not lead.
    #[error("this replica does not hold the driver lease: another replica drives")]
    NotLeader,
}

impl StoreError {
    /// A write refused because this replica does not (or no longer) lead.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. } | Self::NotLeader)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Run `$body` with `$pool` bound to the store's pool, whichever it is:
/// the body is expanded once per backend, so every query builder in it is
/// typed for that backend's driver. Optionally a body per backend where
/// the SQL differs.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
    ($store:expr, sqlite |$sqlite:ident| $on_sqlite:expr, postgres |$pg:ident| $on_pg:expr) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite($sqlite) => $on_sqlite,
            $crate::store::Backend::Postgres($pg) => $on_pg,
        }
    };
}
pub(crate) use on_pool;

/// The database behind a store, with its driver's own pool.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    busy: BusyCounts,
    access: AccessGeneration,
    /// Set on the driver's store (`Store::fenced_by`): its writes hold only
    /// while the role says this replica leads, at the epoch it names, and
    /// the database still agrees.
    fence: Option<tokio::sync::watch::Receiver<crate::lease::Role>>,
}

/// How many connections a replica opens to PostgreSQL at most.
const PG_MAX_CONNECTIONS: u32 = 10;

/// How long a statement waits for SQLite's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Open (creating if needed) and migrate the database at `url`:
    /// `postgres://` (or `postgresql://`) is PostgreSQL, anything else SQLite.
    pub async fn connect(url: &str) -> Result<Self> {
        if is_postgres_url(url) {
            Self::connect_postgres(url).await
        } else {
            Self::connect_sqlite(url).await
        }
    }

    async fn connect_postgres(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            backend: Backend::Postgres(pool),
            busy: BusyCounts::default(),
            access: AccessGeneration::default(),
            fence: None,
        })
    }

    async fn connect_sqlite(url: &str) -> Result<Self> {
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
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
            busy,
            access: AccessGeneration::default(),
            fence: None,
        })
    }

    /// "sqlite" or "postgres" (for `/healthz`).
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// How often statements waited for SQLite's lock (for `/metrics`;
    /// always zero on PostgreSQL, which has no such lock).
    pub fn busy_counts(&self) -> &BusyCounts {
        &self.busy
    }

    /// Bumped by this process's writes that take access away.
    pub fn access_generation(&self) -> &AccessGeneration {
        &self.access
    }

    /// The database and its driver's pool, for what lives next to the
    /// store's tables (the session table) and for tests.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Close every connection (waits for the ones in use).
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// Cheap liveness check for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` without its password, for error messages and logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
