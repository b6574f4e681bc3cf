use super::{Result, Store, on_pool};
use crate::domain::{GithubId, Login};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub github_id: GithubId,
    pub login: Login,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub registered_via: Option<String>,
    /// Set by a revocation, cleared only when an admin allows them again:
    /// until then no registration link registers them.
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl User {
    pub fn is_registered(&self) -> bool {
        self.registered_at.is_some()
    }

    pub fn is_withdrawn(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// What a registration link did for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Registered,
    AlreadyRegistered,
    /// Their access was revoked: only an admin can allow them again.
    Withdrawn,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invite {
    pub login: Login,
    pub invited_at: DateTime<Utc>,
    pub invited_by: String,
}

impl Store {
    /// Record a login: create the user or refresh their login name (GitHub
    /// logins can be renamed; the numeric id stays). A pending invitation for
    /// this login registers them.
    pub async fn record_login(&self, id: GithubId, login: &Login) -> Result<User> {
        let now = Utc::now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // A user who renamed away from a login frees it for whoever has it now.
            sqlx::query(
                "UPDATE users SET login = 'renamed-' || github_id WHERE login = $1 AND github_id <> $2",
            )
            .bind(login.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO users (github_id, login, created_at, last_login_at) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (github_id) DO UPDATE SET login = excluded.login, last_login_at = excluded.last_login_at",
            )
            .bind(id)
            .bind(login.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let invited = sqlx::query("DELETE FROM invited_logins WHERE login = $1")
                .bind(login.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if invited {
                // An admin allowed this login: that lifts a revocation too.
                sqlx::query(
                    "UPDATE users SET registered_at = $1, registered_via = 'invitation',
                                      revoked_at = NULL, revoked_by = NULL
                     WHERE github_id = $2 AND registered_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        // The login may have moved from another user to this one.
        self.access_generation().bump();
        Ok(self.user(id).await?.expect("the user was just written"))
    }

    pub async fn user(&self, id: GithubId) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM users WHERE github_id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn user_by_login(&self, login: &Login) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM users WHERE login = $1"
        )
        .bind(login.as_str())
        .fetch_optional(pool)
        .await?))
    }

    /// Register a user through a registration link; `via` says which.
    /// A revoked user is not registered.
    pub async fn register(&self, id: GithubId, via: &str) -> Result<Registration> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE users SET registered_at = $1, registered_via = $2
             WHERE github_id = $3 AND registered_at IS NULL AND revoked_at IS NULL",
        )
        .bind(Utc::now())
        .bind(via)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        if done > 0 {
            return Ok(Registration::Registered);
        }
        let withdrawn = self.user(id).await?.is_some_and(|u| u.is_withdrawn());
        Ok(if withdrawn {
            Registration::Withdrawn
        } else {
            Registration::AlreadyRegistered
        })
    }

    /// An admin allows a user (again): registers them and lifts a
    /// revocation. Returns false when they were already registered.
    pub async fn allow_user(&self, id: GithubId, by: &str) -> Result<bool> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE users SET registered_at = $1, registered_via = $2,
                              revoked_at = NULL, revoked_by = NULL
             WHERE github_id = $3 AND registered_at IS NULL",
        )
        .bind(Utc::now())
        .bind(by)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done > 0)
    }

    /// An admin allows a login (`users add`): registers the user if they
    /// have logged in before (lifting a revocation), otherwise remembers
    /// the invitation for their first login.
    pub async fn allow_login(&self, login: &Login, by: &str) -> Result<AllowOutcome> {
        if let Some(user) = self.user_by_login(login).await? {
            return Ok(if self.allow_user(user.github_id, by).await? {
                AllowOutcome::Registered
            } else {
                AllowOutcome::AlreadyRegistered
            });
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO invited_logins (login, invited_at, invited_by) VALUES ($1, $2, $3)
             ON CONFLICT (login) DO NOTHING",
        )
        .bind(login.as_str())
        .bind(Utc::now())
        .bind(by)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(AllowOutcome::Invited)
    }

    /// `users import`: allow a login of a list, unless its user was
    /// revoked: importing the course list again must not undo that.
    pub async fn import_login(&self, login: &Login, by: &str) -> Result<Imported> {
        let withdrawn = self
            .user_by_login(login)
            .await?
            .is_some_and(|u| u.is_withdrawn());
        if withdrawn {
            return Ok(Imported::LeftOutRevoked);
        }
        Ok(Imported::Allowed(self.allow_login(login, by).await?))
    }

    /// Take a login off the allowlist (and drop a pending invitation).
    /// Returns the user, if there is one, so the caller can delete their VM.
    /// The revocation sticks: see `register`.
    pub async fn revoke_login(&self, login: &Login, by: &str) -> Result<(Option<User>, bool)> {
        let uninvited = on_pool!(self, |pool| {
            let uninvited = sqlx::query("DELETE FROM invited_logins WHERE login = $1")
                .bind(login.as_str())
                .execute(pool)
                .await?
                .rows_affected()
                > 0;
            sqlx::query(
                "UPDATE users SET registered_at = NULL, registered_via = NULL,
                                  revoked_at = $1, revoked_by = $2
                 WHERE login = $3",
            )
            .bind(Utc::now())
            .bind(by)
            .bind(login.as_str())
            .execute(pool)
            .await?;
            uninvited
        });
        self.access_generation().bump();
        Ok((self.user_by_login(login).await?, uninvited))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM users ORDER BY login"
        )
        .fetch_all(pool)
        .await?))
    }

    pub async fn list_invites(&self) -> Result<Vec<Invite>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM invited_logins ORDER BY login"
        )
        .fetch_all(pool)
        .await?))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowOutcome {
    Registered,
    AlreadyRegistered,
    Invited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Allowed(AllowOutcome),
    /// The user was revoked; only `users add` or /admin allows them again.
    LeftOutRevoked,
}
