//! `[registration]`: who may register and administer, and how many wrong
//! registration secrets a client may try.

use crate::domain::{GithubId, Login};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// The secret in `/register/{secret}`.
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
    /// GitHub accounts that are always allowed and see /admin: `id:1234`
    /// or a login, which is tied to the account that first logs in with
    /// it (GitHub lets anyone take a login its owner renamed away from).
    pub admins: Vec<GithubUser>,
    /// Also allowed without a link: members of these GitHub organizations
    /// (`org`) or teams (`org/team`). Asks GitHub for `read:org`.
    pub allowed_orgs: Vec<OrgOrTeam>,
    /// Refused everywhere, whatever else says; written like `admins`, so
    /// a rename does not get a blocked account back in.
    pub blocked_users: Vec<GithubUser>,
    /// Wrong registration secrets one client may try per `guess_window_minutes`.
    pub wrong_guesses: NonZeroU32,
    pub guess_window_minutes: NonZeroU32,
}

impl RegistrationConfig {
    /// The window in which `wrong_guesses` are counted (and a lockout lasts).
    pub fn guess_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.guess_window_minutes.get()) * 60)
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "admins" | "blocked_users" => {
                Some("list GitHub logins or ids, e.g. [\"octocat\", \"id:583231\"]")
            }
            "allowed_orgs" => {
                Some("list organizations or org/team slugs, e.g. [\"my-org\", \"my-org/tutors\"]")
            }
            "wrong_guesses" => Some("use a positive number, e.g. wrong_guesses = 10"),
            "guess_window_minutes" => {
                Some("use a positive number of minutes, e.g. guess_window_minutes = 10")
            }
            _ => None,
        }
    }
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            admins: Vec::new(),
            allowed_orgs: Vec::new(),
            blocked_users: Vec::new(),
            wrong_guesses: const { NonZeroU32::new(10).unwrap() },
            guess_window_minutes: const { NonZeroU32::new(10).unwrap() },
        }
    }
}

/// A GitHub account in `registration.admins` or `blocked_users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GithubUser {
    /// `id:1234`: GitHub's numeric user id, which never changes.
    Id(GithubId),
    /// A login, resolved to an id at its first login (see `crate::access`).
    Login(Login),
}

impl From<Login> for GithubUser {
    fn from(login: Login) -> Self {
        Self::Login(login)
    }
}

impl std::str::FromStr for GithubUser {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().strip_prefix("id:") {
            Some(id) => match id.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(Self::Id(GithubId(n))),
                _ => Err(format!(
                    "{raw:?}: a GitHub id is a positive number, e.g. id:583231"
                )),
            },
            None => Login::parse(raw)
                .map(Self::Login)
                .map_err(|e| format!("{raw:?}: {e}")),
        }
    }
}

impl<'de> Deserialize<'de> for GithubUser {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `org` or `org/team` (team by its slug).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgOrTeam {
    pub org: Login,
    pub team: Option<String>,
}

impl<'de> Deserialize<'de> for OrgOrTeam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let (org, team) = match raw.split_once('/') {
            Some((org, team)) => (org, Some(team)),
            None => (raw.as_str(), None),
        };
        let org =
            Login::parse(org).map_err(|e| serde::de::Error::custom(format!("{raw:?}: {e}")))?;
        if let Some(team) = team
            && (team.is_empty()
                || !team
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(serde::de::Error::custom(format!(
                "{raw:?}: a team is written org/team-slug"
            )));
        }
        Ok(Self {
            org,
            team: team.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load_str;

    #[test]
    fn admins_and_blocked_users_take_ids_or_logins() {
        let c = load_str(
            "[registration]\nadmins = [\"id:583231\", \"Octocat\"]\nblocked_users = [\"id:7\"]",
        )
        .unwrap();
        assert_eq!(
            c.registration.admins,
            [
                GithubUser::Id(GithubId(583231)),
                GithubUser::Login(Login::parse("Octocat").unwrap())
            ]
        );
        assert_eq!(c.registration.blocked_users, [GithubUser::Id(GithubId(7))]);
        for bad in ["id:", "id:-3", "id:12x", "not a login"] {
            let e = load_str(&format!("[registration]\nadmins = [\"{bad}\"]")).unwrap_err();
            assert_eq!(e.key, "registration.admins.0", "{bad}");
            assert!(e.fix.contains("id:583231"), "{bad}: {}", e.fix);
        }
    }

    #[test]
    fn allowed_orgs_are_orgs_or_org_slash_team() {
        let c = load_str("[registration]\nallowed_orgs = [\"my-org\", \"my-org/tutors\"]").unwrap();
        let teams: Vec<_> = c
            .registration
            .allowed_orgs
            .iter()
            .map(|o| (o.org.as_str(), o.team.as_deref()))
            .collect();
        assert_eq!(teams, [("my-org", None), ("my-org", Some("tutors"))]);
        for bad in ["my-org/", "my-org/a b", "not an org/x"] {
            let e = load_str(&format!("[registration]\nallowed_orgs = [\"{bad}\"]")).unwrap_err();
            assert_eq!(e.key, "registration.allowed_orgs.0", "{bad}");
            assert!(e.fix.contains("org/team"), "{bad}: {}", e.fix);
        }
    }

    #[test]
    fn the_guess_window_is_in_minutes() {
        let c = load_str("[registration]\nguess_window_minutes = 3").unwrap();
        assert_eq!(c.registration.guess_window().as_secs(), 180);
    }
}
