//! `[pool]`: the warm pool, VMs booted ahead of demand and handed to the
//! next launch, and the course repositories they build ahead.

mod schedule;

pub use schedule::{ScheduleEntry, size_at};

use super::ConfigError;
use crate::domain::{GitRef, RepoSpec};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// How many ready VMs to keep waiting for a launch; 0 turns the pool off.
    pub size: u32,
    /// A pool VM nobody claimed for this long is replaced by a fresh one.
    pub max_idle_hours: u32,
    /// A claimed VM that has not asked for its assignment after this long
    /// is given up, and the launch boots a VM of its own instead.
    pub claim_timeout_seconds: u64,
    /// Times with another pool size, such as `"Mon 08:30-12:00 size=40"`.
    pub schedule: Vec<ScheduleEntry>,
    /// Repositories whose environments pool VMs build ahead.
    pub repos: Vec<PinnedRepoConfig>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            size: 0,
            max_idle_hours: 24,
            claim_timeout_seconds: 60,
            schedule: Vec::new(),
            repos: Vec::new(),
        }
    }
}

/// One entry of `[pool] repos`: a repository and the ref to build.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawPinnedRepo")]
pub struct PinnedRepoConfig {
    pub repo: RepoSpec,
    pub git_ref: GitRef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPinnedRepo {
    repo: String,
    #[serde(rename = "ref", default = "default_ref")]
    git_ref: String,
}

fn default_ref() -> String {
    "HEAD".into()
}

impl TryFrom<RawPinnedRepo> for PinnedRepoConfig {
    type Error = String;

    fn try_from(raw: RawPinnedRepo) -> Result<Self, String> {
        Ok(Self {
            repo: RepoSpec::parse(&raw.repo)?,
            git_ref: GitRef::parse(&raw.git_ref)?,
        })
    }
}

impl PoolConfig {
    pub fn max_idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.max_idle_hours) * 3600)
    }

    pub fn claim_timeout(&self) -> Duration {
        Duration::from_secs(self.claim_timeout_seconds)
    }

    /// How many VMs the pool holds at `now`, by the schedule.
    pub fn size_at(&self, now: chrono::DateTime<chrono::Utc>) -> u32 {
        size_at(self.size, &self.schedule, now)
    }

    /// Whether any time of the week has a pool.
    pub fn enabled(&self) -> bool {
        self.size > 0 || self.schedule.iter().any(|e| e.size > 0)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_idle_hours == 0 {
            return Err(ConfigError::new(
                "pool.max_idle_hours",
                "must be positive, not 0",
                "use a number of hours, e.g. max_idle_hours = 24",
            ));
        }
        if self.claim_timeout_seconds == 0 {
            return Err(ConfigError::new(
                "pool.claim_timeout_seconds",
                "must be positive, not 0",
                "use a number of seconds, e.g. claim_timeout_seconds = 60",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse.
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "size" => Some("use a number of VMs, e.g. size = 10, or 0 for no pool"),
            "max_idle_hours" => Some("use a number of hours, e.g. max_idle_hours = 24"),
            "claim_timeout_seconds" => {
                Some("use a number of seconds, e.g. claim_timeout_seconds = 60")
            }
            "repos" => {
                Some("write repos = [{ repo = \"https://github.com/org/course\", ref = \"main\" }]")
            }
            "schedule" => Some(
                "write schedule = [\"Mon,Thu 08:30-12:00 size=40\"]: days (Mon, Mon,Thu or Mon-Fri), HH:MM-HH:MM in UTC, size=N",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn the_pool_is_off_unless_sized_and_its_repos_are_checked() {
        let c = load_str("").unwrap();
        assert_eq!(c.pool.size, 0);
        assert!(c.pool.repos.is_empty());
        let c = load_str(
            "[pool]\nsize = 4\nrepos = [{ repo = \"https://github.com/a/b\", ref = \"main\" }, { repo = \"https://github.com/a/c\" }]",
        )
        .unwrap();
        assert_eq!(c.pool.size, 4);
        assert_eq!(c.pool.repos[0].git_ref.as_str(), "main");
        assert_eq!(c.pool.repos[1].git_ref.as_str(), "HEAD");
        let e = load_str("[pool]\nrepos = [{ repo = \"file:///etc\" }]").unwrap_err();
        assert!(e.key.starts_with("pool.repos"), "{e}");
        let e = load_str("[pool]\nmax_idle_hours = 0").unwrap_err();
        assert_eq!(e.key, "pool.max_idle_hours");
        let c = load_str("[pool]\nschedule = [\"Mon-Fri 08:30-12:00 size=40\"]").unwrap();
        assert_eq!(c.pool.schedule[0].size, 40);
        let e = load_str("[pool]\nschedule = [\"Mon 8-12 size=40\"]").unwrap_err();
        assert!(e.key.starts_with("pool.schedule"), "{e}");
        assert!(e.to_string().contains("HH:MM"), "{e}");
    }
}
