//! The session table: tower-sessions' SQLite or PostgreSQL store (in the
//! store's own database), except that saving a session only ever updates
//! its row. tower-sessions saves with an upsert, so a request that loaded a
//! session before a concurrent logout (or a login's id change) deleted it
//! would write it back at its end, and the logged-out cookie would work
//! again. A session row is made only by `create`, which tower-sessions
//! calls for a session that has no row yet.

use crate::store::{AccessGeneration, Backend, Store};
use async_trait::async_trait;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, ExpiredDeletion, Result};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The table `SqliteStore::new` uses (and `migrate` creates).
const SQLITE_TABLE: &str = "tower_sessions";
/// The schema and table `PostgresStore::new` uses (and `migrate` creates).
const POSTGRES_TABLE: &str = r#""tower_sessions"."session""#;

#[derive(Debug, Clone)]
pub struct SessionRows {
    rows: Rows,
    /// Bumped when a session ends (logout, a login's new id), so that the
    /// proxy forgets what it let that session reach.
    ended: AccessGeneration,
}

#[derive(Debug, Clone)]
enum Rows {
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

impl SessionRows {
    pub fn new(store: &Store) -> Self {
        let rows = match store.backend() {
            Backend::Sqlite(pool) => Rows::Sqlite(SqliteStore::new(pool.clone()), pool.clone()),
            Backend::Postgres(pool) => {
                Rows::Postgres(PostgresStore::new(pool.clone()), pool.clone())
            }
        };
        Self {
            rows,
            ended: store.access_generation().clone(),
        }
    }

    /// Create the table if it is missing.
    pub async fn migrate(&self) -> sqlx::Result<()> {
        match &self.rows {
            Rows::Sqlite(store, _) => store.migrate().await,
            Rows::Postgres(store, _) => store.migrate().await,
        }
    }
}

fn backend_error(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> Result<()> {
        match &self.rows {
            Rows::Sqlite(store, _) => store.create(record).await,
            Rows::Postgres(store, _) => store.create(record).await,
        }
    }

    /// Update the row; a row that is gone (logged out, expired) stays gone.
    async fn save(&self, record: &Record) -> Result<()> {
        let data = rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        let id = record.id.to_string();
        let table = match &self.rows {
            Rows::Sqlite(..) => SQLITE_TABLE,
            Rows::Postgres(..) => POSTGRES_TABLE,
        };
        let update = format!("UPDATE {table} SET data = $1, expiry_date = $2 WHERE id = $3");
        match &self.rows {
            Rows::Sqlite(_, pool) => sqlx::query(&update)
                .bind(data)
                .bind(record.expiry_date)
                .bind(id)
                .execute(pool)
                .await
                .map(drop),
            Rows::Postgres(_, pool) => sqlx::query(&update)
                .bind(data)
                .bind(record.expiry_date)
                .bind(id)
                .execute(pool)
                .await
                .map(drop),
        }
        .map_err(backend_error)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match &self.rows {
            Rows::Sqlite(store, _) => store.load(id).await,
            Rows::Postgres(store, _) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        match &self.rows {
            Rows::Sqlite(store, _) => store.delete(id).await?,
            Rows::Postgres(store, _) => store.delete(id).await?,
        }
        self.ended.bump();
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for SessionRows {
    async fn delete_expired(&self) -> Result<()> {
        match &self.rows {
            Rows::Sqlite(store, _) => store.delete_expired().await,
            Rows::Postgres(store, _) => store.delete_expired().await,
        }
    }
}
