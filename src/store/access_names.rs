//! Logins of `registration.admins` and `blocked_users` tied to the GitHub
//! account that first had them (see `crate::access`).

use super::{Result, Store, on_pool};
use crate::domain::{GithubId, Login};
use chrono::Utc;

/// Which configured list a login is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessList {
    Admins,
    BlockedUsers,
}

impl AccessList {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admins => "admins",
            Self::BlockedUsers => "blocked_users",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admins" => Some(Self::Admins),
            "blocked_users" => Some(Self::BlockedUsers),
            _ => None,
        }
    }
}

impl Store {
    /// Every tie made so far.
    pub async fn access_names(&self) -> Result<Vec<(AccessList, String, GithubId)>> {
        let rows: Vec<(String, String, GithubId)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT list, login, github_id FROM access_names"
        )
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(list, login, id)| Some((AccessList::parse(&list)?, login, id)))
            .collect())
    }

    /// Tie `login` on `list` to `id` unless it is tied already; returns the
    /// account it is tied to (the first tie is kept for good).
    pub async fn tie_access_name(
        &self,
        list: AccessList,
        login: &Login,
        id: GithubId,
    ) -> Result<GithubId> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO access_names (list, login, github_id, resolved_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (list, login) DO NOTHING",
            )
            .bind(list.as_str())
            .bind(login.as_str())
            .bind(id)
            .bind(Utc::now())
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT github_id FROM access_names WHERE list = $1 AND login = $2")
                .bind(list.as_str())
                .bind(login.as_str())
                .fetch_one(pool)
                .await?
        }))
    }
}
