//! The session table: tower-sessions' SQLite store, except that saving a
//! session only ever updates its row. tower-sessions saves with an upsert,
//! so a request that loaded a session before a concurrent logout (or a
//! login's id change) deleted it would write it back at its end, and the
//! logged-out cookie would work again. A session row is made only by
//! `create`, which tower-sessions calls for a session that has no row yet.

use async_trait::async_trait;
use sqlx::SqlitePool;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, ExpiredDeletion, Result};
use tower_sessions_sqlx_store::SqliteStore;

/// The table `SqliteStore::new` uses (and `migrate` creates).
const TABLE: &str = "tower_sessions";

#[derive(Debug, Clone)]
pub struct SessionRows {
    sqlite: SqliteStore,
    pool: SqlitePool,
}

impl SessionRows {
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            sqlite: SqliteStore::new(pool.clone()),
            pool,
        }
    }

    /// Create the table if it is missing.
    pub async fn migrate(&self) -> sqlx::Result<()> {
        self.sqlite.migrate().await
    }
}

#[async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> Result<()> {
        self.sqlite.create(record).await
    }

    /// Update the row; a row that is gone (logged out, expired) stays gone.
    async fn save(&self, record: &Record) -> Result<()> {
        let data = rmp_serde::to_vec(record).map_err(|e| Error::Encode(e.to_string()))?;
        sqlx::query(&format!(
            "UPDATE {TABLE} SET data = ?, expiry_date = ? WHERE id = ?"
        ))
        .bind(data)
        .bind(record.expiry_date)
        .bind(record.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        self.sqlite.load(id).await
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.sqlite.delete(id).await
    }
}

#[async_trait]
impl ExpiredDeletion for SessionRows {
    async fn delete_expired(&self) -> Result<()> {
        self.sqlite.delete_expired().await
    }
}
