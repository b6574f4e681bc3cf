use serde::{Deserialize, Serialize};
use std::fmt;

/// GitHub's numeric user id: the identity that survives a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
pub struct GithubId(pub i64);

impl GithubId {
    /// A stable id for a demo login, derived from the name: far above
    /// GitHub's real ids, so a demo database never looks like real accounts.
    pub fn for_demo(login: &Login) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(login.as_str().to_ascii_lowercase().as_bytes());
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        Self(9_000_000_000 + i64::from(n))
    }
}

impl fmt::Display for GithubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A GitHub login: 1 to 39 ASCII letters, digits or hyphens, not starting
/// with a hyphen. It becomes part of a server name, so nothing else may pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Login(String);

impl Login {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("a GitHub login cannot be empty".into());
        }
        if s.len() > 39 {
            return Err("a GitHub login has at most 39 characters".into());
        }
        if s.starts_with('-') {
            return Err("a GitHub login cannot start with a hyphen".into());
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("a GitHub login has only letters, digits and hyphens".into());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Login {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::text_column::stored_as_text!(Login, Login::parse);

impl<'de> Deserialize<'de> for Login {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Login::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_logins_are_accepted() {
        for ok in ["octocat", "a", "some-user-42", &"x".repeat(39)] {
            assert_eq!(Login::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn logins_that_could_break_a_name_or_a_shell_are_rejected() {
        for bad in ["", "-x", "a b", "a;b", "a/b", "é", "$(id)", &"x".repeat(40)] {
            assert!(Login::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
