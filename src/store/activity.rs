//! The last time the proxy saw a ready VM used.

use super::{Result, Store, on_pool};
use crate::domain::VmId;
use chrono::{DateTime, Utc};

impl Store {
    /// Move `proxied_at` of a ready VM forward to `at` (never back).
    /// False when the VM is not ready (any more).
    pub async fn record_proxied_activity(&self, id: VmId, at: DateTime<Utc>) -> Result<bool> {
        // SQLite holds times as text, compared as instants by `julianday`;
        // PostgreSQL's TIMESTAMPTZ compares as such.
        let done = on_pool!(
            self,
            sqlite
                | pool
                | sqlx::query(
                    "UPDATE vms SET proxied_at = CASE
                     WHEN proxied_at IS NULL OR julianday(proxied_at) < julianday($1)
                     THEN $1 ELSE proxied_at END
                 WHERE id = $2 AND state = 'ready'",
                )
                .bind(at)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            postgres
                | pool
                | sqlx::query(
                    "UPDATE vms SET proxied_at = GREATEST(proxied_at, $1)
                 WHERE id = $2 AND state = 'ready'",
                )
                .bind(at)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        );
        Ok(done == 1)
    }
}
