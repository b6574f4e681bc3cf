use super::{Result, Store, on_pool};
use crate::domain::GithubId;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RegistrationLink {
    pub id: i64,
    pub label: String,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether a link still registers people, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Active,
    Expired,
    UsedUp,
    Revoked,
}

impl RegistrationLink {
    pub fn state(&self, now: DateTime<Utc>) -> LinkState {
        if self.revoked_at.is_some() {
            LinkState::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            LinkState::Expired
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            LinkState::UsedUp
        } else {
            LinkState::Active
        }
    }
}

/// What using a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUse {
    Registered,
    AlreadyRegistered,
    /// The user's access was revoked; a link does not undo that.
    Withdrawn,
    /// Expired, used up or revoked by the time it was used.
    LinkNotActive,
}

pub struct NewLink<'a> {
    pub label: &'a str,
    pub secret_hash: &'a [u8],
    pub created_by: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i64>,
}

impl Store {
    pub async fn create_link(&self, new: NewLink<'_>) -> Result<RegistrationLink> {
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "INSERT INTO registration_links (label, secret_hash, created_at, created_by, expires_at, max_uses)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.label)
        .bind(new.secret_hash)
        .bind(Utc::now())
        .bind(new.created_by)
        .bind(new.expires_at)
        .bind(new.max_uses)
        .fetch_one(pool)
        .await?
        });
        Ok(self.link(id).await?.expect("the link was just inserted"))
    }

    pub async fn link(&self, id: i64) -> Result<Option<RegistrationLink>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM registration_links WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Every link ever made, newest first (revoked ones included).
    pub async fn list_links(&self) -> Result<Vec<RegistrationLink>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM registration_links ORDER BY id DESC"
        )
        .fetch_all(pool)
        .await?))
    }

    pub async fn revoke_link(&self, id: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE registration_links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(done == 1)
    }

    /// Register `user` through link `id`, counting the use, if the link is
    /// still active and the user not yet registered; both in one
    /// transaction, so concurrent uses never exceed `max_uses`.
    pub async fn register_with_link(&self, id: i64, user: GithubId, via: &str) -> Result<LinkUse> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let registered = sqlx::query(
                "UPDATE users SET registered_at = $1, registered_via = $2
                 WHERE github_id = $3 AND registered_at IS NULL AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(via)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !registered {
                let withdrawn: bool = sqlx::query_scalar(
                    "SELECT revoked_at IS NOT NULL FROM users WHERE github_id = $1",
                )
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(false);
                return Ok(if withdrawn {
                    LinkUse::Withdrawn
                } else {
                    LinkUse::AlreadyRegistered
                });
            }
            let counted = sqlx::query(
                "UPDATE registration_links SET uses = uses + 1
                 WHERE id = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > $2)
                   AND (max_uses IS NULL OR uses < max_uses)",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if counted {
                tx.commit().await?;
                LinkUse::Registered
            } else {
                // The link ran out while this request was on its way.
                tx.rollback().await?;
                LinkUse::LinkNotActive
            }
        }))
    }
}
