//! Personal access tokens: only the hash of the secret is stored.
//! Portable SQL ($N placeholders, timestamps bound from Rust).

use super::{Result, Store, on_pool};
use crate::domain::GithubId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub github_id: GithubId,
    pub label: String,
    pub secret_hash: Vec<u8>,
    /// Space-separated scope names, parsed by `crate::api::Scopes`.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

pub struct NewToken<'a> {
    pub github_id: GithubId,
    pub label: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a str,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    pub async fn create_token(&self, token: NewToken<'_>) -> Result<i64> {
        let (id,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as(
            "INSERT INTO api_tokens (github_id, label, secret_hash, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(token.github_id)
        .bind(token.label)
        .bind(token.secret_hash)
        .bind(token.scopes)
        .bind(Utc::now())
        .bind(token.expires_at)
        .fetch_one(pool)
        .await
        })?;
        Ok(id)
    }

    /// The token whose secret hashes to `hash`. The lookup is by an
    /// index on the hash; the caller still compares in constant time.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<ApiToken>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM api_tokens WHERE secret_hash = $1"
        )
        .bind(hash)
        .fetch_optional(pool)
        .await)?)
    }

    pub async fn tokens_of(&self, owner: GithubId) -> Result<Vec<ApiToken>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM api_tokens WHERE github_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(owner)
        .fetch_all(pool)
        .await)?)
    }

    /// Revoke one of `owner`'s tokens; false if it is not theirs or already revoked.
    pub async fn revoke_token(&self, owner: GithubId, id: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1
             WHERE id = $2 AND github_id = $3 AND revoked_at IS NULL",
        )
        .bind(Utc::now())
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    pub async fn token_used(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2"
        )
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }
}
