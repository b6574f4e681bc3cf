use super::{Result, Store};
use crate::domain::{GithubId, Login};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub github_id: GithubId,
    pub login: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub registered_via: Option<String>,
}

impl User {
    pub fn is_registered(&self) -> bool {
        self.registered_at.is_some()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invite {
    pub login: String,
    pub invited_at: DateTime<Utc>,
    pub invited_by: String,
}

impl Store {
    /// Record a login: create the user or refresh their login name (GitHub
    /// logins can be renamed; the numeric id stays). A pending invitation for
    /// this login registers them.
    pub async fn record_login(&self, id: GithubId, login: &Login) -> Result<User> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        // A user who renamed away from a login frees it for whoever has it now.
        sqlx::query(
            "UPDATE users SET login = 'renamed-' || github_id WHERE login = ? AND github_id <> ?",
        )
        .bind(login.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO users (github_id, login, created_at, last_login_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (github_id) DO UPDATE SET login = excluded.login, last_login_at = excluded.last_login_at",
        )
        .bind(id)
        .bind(login.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let invited = sqlx::query("DELETE FROM invited_logins WHERE login = ?")
            .bind(login.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if invited {
            sqlx::query(
                "UPDATE users SET registered_at = ?, registered_via = 'invitation'
                 WHERE github_id = ? AND registered_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(self.user(id).await?.expect("the user was just written"))
    }

    pub async fn user(&self, id: GithubId) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE github_id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_login(&self, login: &Login) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE login = ?")
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Put a user on the allowlist; `via` says how (a link label, `cli`...).
    /// Returns false when they were already registered.
    pub async fn register(&self, id: GithubId, via: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET registered_at = ?, registered_via = ?
             WHERE github_id = ? AND registered_at IS NULL",
        )
        .bind(Utc::now())
        .bind(via)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Allow a login: registers the user if they have logged in before,
    /// otherwise remembers the invitation for their first login.
    pub async fn allow_login(&self, login: &Login, by: &str) -> Result<AllowOutcome> {
        if let Some(user) = self.user_by_login(login).await? {
            return Ok(if self.register(user.github_id, by).await? {
                AllowOutcome::Registered
            } else {
                AllowOutcome::AlreadyRegistered
            });
        }
        sqlx::query(
            "INSERT INTO invited_logins (login, invited_at, invited_by) VALUES (?, ?, ?)
             ON CONFLICT (login) DO NOTHING",
        )
        .bind(login.as_str())
        .bind(Utc::now())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(AllowOutcome::Invited)
    }

    /// Take a login off the allowlist (and drop a pending invitation).
    /// Returns the user, if there is one, so the caller can delete their VM.
    pub async fn revoke_login(&self, login: &Login) -> Result<(Option<User>, bool)> {
        let uninvited = sqlx::query("DELETE FROM invited_logins WHERE login = ?")
            .bind(login.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0;
        sqlx::query("UPDATE users SET registered_at = NULL, registered_via = NULL WHERE login = ?")
            .bind(login.as_str())
            .execute(&self.pool)
            .await?;
        Ok((self.user_by_login(login).await?, uninvited))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY login")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn list_invites(&self) -> Result<Vec<Invite>> {
        Ok(
            sqlx::query_as("SELECT * FROM invited_logins ORDER BY login")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowOutcome {
    Registered,
    AlreadyRegistered,
    Invited,
}
