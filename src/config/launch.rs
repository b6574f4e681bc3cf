//! `[launch]`: what a launch may start, how long each of its phases may
//! take, and how long a VM lives.

use super::ConfigError;
use crate::domain::{RepoPattern, RepoSpec, repo_policy};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::num::{NonZeroU16, NonZeroU64};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaunchConfig {
    /// Launched when a link has no `giturl`.
    #[serde(deserialize_with = "repo_spec")]
    pub default_repo: RepoSpec,
    /// The port Jupyter listens on inside the VM.
    pub jupyter_port: NonZeroU16,
    /// How long each phase of a launch may take before it fails.
    pub boot_timeout_seconds: NonZeroU64,
    pub clone_timeout_seconds: NonZeroU64,
    pub build_timeout_seconds: NonZeroU64,
    pub start_timeout_seconds: NonZeroU64,
    /// A VM is deleted this long after its launch (plus extensions).
    pub max_lifetime_hours: f64,
    /// How many times the owner may push the expiry back...
    pub max_extensions: u32,
    /// ...and by how much each time.
    pub extension_hours: f64,
    /// A ready VM whose Jupyter saw no activity for this long is deleted;
    /// 0 turns idle culling off.
    pub idle_timeout_minutes: u32,
    /// A launch waiting for a free slot fails after this long.
    pub queue_timeout_minutes: u32,
    /// At most this many VMs at once of a repository (workshops).
    pub repo_caps: BTreeMap<String, u32>,
    /// The hosts repositories may come from (lower-case host names); empty:
    /// any host.
    pub allowed_hosts: Vec<String>,
    /// Repositories that may not be launched: URL globs (`*` is any run of
    /// characters), BinderHub's `banned_specs`.
    #[serde(deserialize_with = "repo_patterns")]
    pub banned_repos: Vec<RepoPattern>,
}

impl LaunchConfig {
    /// Whether this server launches `repo`; if not, why, for its user.
    pub fn permits(&self, repo: &RepoSpec) -> Result<(), String> {
        repo_policy::check(repo, &self.allowed_hosts, &self.banned_repos)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.max_lifetime_hours > 0.0 && self.extension_hours >= 0.0) {
            return Err(ConfigError::new(
                "launch.max_lifetime_hours",
                "the lifetime must be positive (and extensions not negative)",
                "use e.g. max_lifetime_hours = 8 and extension_hours = 4",
            ));
        }
        for repo in self.repo_caps.keys() {
            if let Err(problem) = RepoSpec::parse(repo) {
                return Err(ConfigError::new(
                    "launch.repo_caps",
                    format!("{repo:?}: {problem}"),
                    "use the repository URLs exactly as users launch them",
                ));
            }
        }
        if let Some(host) = self.allowed_hosts.iter().find(|h| {
            h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        }) {
            return Err(ConfigError::new(
                "launch.allowed_hosts",
                format!("{host:?} is not a host name"),
                "list lower-case host names, e.g. [\"github.com\", \"gitlab.com\"], or leave it empty for any host",
            ));
        }
        if let Err(problem) = self.permits(&self.default_repo) {
            return Err(ConfigError::new(
                "launch.default_repo",
                format!("{}: {problem}", self.default_repo),
                "choose a default repository that launch.allowed_hosts and launch.banned_repos let through",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "default_repo" => Some(
                "write an https git URL, e.g. \"https://github.com/binder-examples/requirements\"",
            ),
            "banned_repos" => Some(
                "list https URL patterns with * wildcards, e.g. [\"https://github.com/some-org/*\"]",
            ),
            "jupyter_port" => Some("use the port Jupyter listens on in the VM, e.g. 8888"),
            "boot_timeout_seconds" => Some("use a positive number of seconds, e.g. 600"),
            "clone_timeout_seconds" => Some("use a positive number of seconds, e.g. 600"),
            "build_timeout_seconds" => Some("use a positive number of seconds, e.g. 3600"),
            "start_timeout_seconds" => Some("use a positive number of seconds, e.g. 300"),
            _ => None,
        }
    }
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            default_repo: RepoSpec::parse("https://github.com/binder-examples/requirements")
                .expect("valid"),
            jupyter_port: const { NonZeroU16::new(8888).unwrap() },
            boot_timeout_seconds: const { NonZeroU64::new(600).unwrap() },
            clone_timeout_seconds: const { NonZeroU64::new(600).unwrap() },
            build_timeout_seconds: const { NonZeroU64::new(3600).unwrap() },
            start_timeout_seconds: const { NonZeroU64::new(300).unwrap() },
            max_lifetime_hours: 8.0,
            max_extensions: 2,
            extension_hours: 4.0,
            idle_timeout_minutes: 60,
            queue_timeout_minutes: 30,
            repo_caps: Default::default(),
            allowed_hosts: Vec::new(),
            banned_repos: Vec::new(),
        }
    }
}

/// A list of repository URLs (`image.prebuild`).
pub(super) fn repo_specs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RepoSpec>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| RepoSpec::parse(raw).map_err(serde::de::Error::custom))
        .collect()
}

fn repo_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RepoPattern>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| RepoPattern::parse(raw).map_err(serde::de::Error::custom))
        .collect()
}

fn repo_spec<'de, D: Deserializer<'de>>(d: D) -> Result<RepoSpec, D::Error> {
    let raw = String::deserialize(d)?;
    RepoSpec::parse(&raw).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn a_bad_default_repo_explains_itself() {
        let e = load_str("[launch]\ndefault_repo = \"git@github.com:a/b\"").unwrap_err();
        assert_eq!(e.key, "launch.default_repo");
    }

    #[test]
    fn allowed_hosts_and_banned_repos_are_checked_at_start() {
        let c = load_str(
            "[launch]\nallowed_hosts = [\"github.com\"]\nbanned_repos = [\"https://github.com/evil/*\"]",
        )
        .unwrap();
        assert_eq!(c.launch.allowed_hosts, ["github.com"]);
        assert_eq!(
            c.launch.banned_repos[0].as_str(),
            "https://github.com/evil/*"
        );
        let e = load_str("[launch]\nbanned_repos = [\"^evil.*\"]").unwrap_err();
        assert_eq!(e.key, "launch.banned_repos");
        assert!(e.fix.contains("wildcards"), "{e}");
        let e = load_str("[launch]\nallowed_hosts = [\"https://github.com\"]").unwrap_err();
        assert_eq!(e.key, "launch.allowed_hosts");
        let e = load_str("[launch]\nallowed_hosts = [\"gitlab.com\"]").unwrap_err();
        assert_eq!(
            e.key, "launch.default_repo",
            "the default must be launchable: {e}"
        );
    }

    #[test]
    fn lifetimes_and_repo_caps_are_checked() {
        for (toml, key) in [
            (
                "[launch]\nmax_lifetime_hours = 0",
                "launch.max_lifetime_hours",
            ),
            (
                "[launch]\nextension_hours = -1",
                "launch.max_lifetime_hours",
            ),
            (
                "[launch.repo_caps]\n\"git@github.com:a/b\" = 3",
                "launch.repo_caps",
            ),
        ] {
            assert_eq!(load_str(toml).unwrap_err().key, key, "{toml}");
        }
        let c = load_str("[launch.repo_caps]\n\"https://github.com/a/b\" = 3").unwrap();
        assert_eq!(c.launch.repo_caps["https://github.com/a/b"], 3);
    }
}
