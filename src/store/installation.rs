//! The installation id: made once, at random, when the database is first
//! opened, and never changed (see the migration for why it exists).

use super::{Result, Store, on_pool};
use crate::cloud::InstallationId;
use chrono::Utc;

impl Store {
    /// This installation's id, made on the first call for this database.
    /// Two processes racing on a new database agree: the insert is ignored
    /// for the loser, and both read the winner's row.
    pub async fn installation_id(&self) -> Result<InstallationId> {
        let id: String = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO installation (singleton, id, created_at) VALUES (1, $1, $2)
                 ON CONFLICT (singleton) DO NOTHING",
            )
            .bind(InstallationId::generate().as_str())
            .bind(Utc::now())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT id FROM installation WHERE singleton = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(InstallationId::from_stored(id))
    }
}
