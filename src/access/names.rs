//! Who is an admin and who is blocked, by GitHub account rather than by
//! name. `registration.admins` and `registration.blocked_users` take
//! `id:1234` (GitHub's numeric id, which never changes) or a login. GitHub
//! lets anyone take a login that its owner renamed away from, so a login is
//! tied, at first sight, to the account that has it: the first login with
//! that name, or the user who already had it when the name was added to the
//! configuration. That tie is stored and kept; the name is for display only
//! from then on. A renamed admin stays an admin under the new name, the
//! account that takes the old name is nobody special, and a blocked user
//! who renames stays blocked.

use crate::config::{GithubUser, RegistrationConfig};
use crate::domain::{GithubId, Login};
use crate::store::{AccessList, Store, StoreError};
use std::collections::HashMap;
use std::sync::RwLock;

pub struct ConfiguredAccounts {
    admins: Vec<GithubUser>,
    blocked: Vec<GithubUser>,
    /// (list, lowercase login) → the account the login was tied to.
    resolved: RwLock<HashMap<(AccessList, String), GithubId>>,
    store: Store,
}

impl ConfiguredAccounts {
    /// The configured lists, with every tie made so far; names not tied
    /// yet are tied to a known user who has that login now.
    pub async fn load(config: &RegistrationConfig, store: &Store) -> Result<Self, StoreError> {
        let resolved = store
            .access_names()
            .await?
            .into_iter()
            .map(|(list, login, id)| ((list, login.to_ascii_lowercase()), id))
            .collect();
        let accounts = Self {
            admins: config.admins.clone(),
            blocked: config.blocked_users.clone(),
            resolved: RwLock::new(resolved),
            store: store.clone(),
        };
        for (list, login) in accounts.untied() {
            if let Some(user) = store.user_by_login(&login).await? {
                accounts.tie(list, &login, user.github_id).await?;
            }
        }
        Ok(accounts)
    }

    /// `id` logs in as `login`: tie the configured names it has that are
    /// not tied yet. Call before deciding anything about the login.
    pub async fn sight(&self, id: GithubId, login: &Login) -> Result<(), StoreError> {
        let seen: Vec<_> = self
            .untied()
            .into_iter()
            .filter(|(_, name)| name.as_str().eq_ignore_ascii_case(login.as_str()))
            .collect();
        for (list, name) in seen {
            self.tie(list, &name, id).await?;
        }
        Ok(())
    }

    pub fn is_admin(&self, id: GithubId) -> bool {
        self.listed(AccessList::Admins, &self.admins, id)
    }

    pub fn is_blocked(&self, id: GithubId) -> bool {
        self.listed(AccessList::BlockedUsers, &self.blocked, id)
    }

    fn listed(&self, list: AccessList, entries: &[GithubUser], id: GithubId) -> bool {
        let resolved = self.resolved.read().expect("access lock");
        entries.iter().any(|entry| match entry {
            GithubUser::Id(listed) => *listed == id,
            GithubUser::Login(name) => resolved
                .get(&(list, name.as_str().to_ascii_lowercase()))
                .is_some_and(|tied| *tied == id),
        })
    }

    /// Configured names without an account yet.
    fn untied(&self) -> Vec<(AccessList, Login)> {
        let resolved = self.resolved.read().expect("access lock");
        [
            (AccessList::Admins, &self.admins),
            (AccessList::BlockedUsers, &self.blocked),
        ]
        .into_iter()
        .flat_map(|(list, entries)| {
            entries.iter().filter_map(move |entry| match entry {
                GithubUser::Login(name) => Some((list, name.clone())),
                GithubUser::Id(_) => None,
            })
        })
        .filter(|(list, name)| !resolved.contains_key(&(*list, name.as_str().to_ascii_lowercase())))
        .collect()
    }

    /// Store the tie (the first one stored wins, should two logins race)
    /// and remember what was stored.
    async fn tie(&self, list: AccessList, login: &Login, id: GithubId) -> Result<(), StoreError> {
        let kept = self.store.tie_access_name(list, login, id).await?;
        if kept == id {
            tracing::info!(list = list.as_str(), login = %login, github_id = %id, "configured login tied to its GitHub account");
        }
        self.resolved
            .write()
            .expect("access lock")
            .insert((list, login.as_str().to_ascii_lowercase()), kept);
        Ok(())
    }
}
