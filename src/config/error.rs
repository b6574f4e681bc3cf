//! What is wrong with a configuration, said so an operator can fix it:
//! the key, the problem with its value, and what to write instead. Values
//! that do not parse (figment's errors, a 0 for a `NonZero*` key among
//! them) get the fix their section gives for the key.

use super::{ApiConfig, RegistrationConfig, ServerConfig, StorageConfig};
use super::{CloudConfig, GithubConfig, ImageConfig, LaunchConfig, ProvisionConfig};
use std::fmt;

/// A configuration problem, said so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration key `{}`: {}\n  fix: {}",
            self.key, self.problem, self.fix
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(super) fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The fix for every key that holds a URL.
pub(super) const URL_FIX: &str = "write a full URL, e.g. \"https://binder.example.org\"";

pub(super) fn from_figment_error(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        "(top level)".to_owned()
    } else {
        err.path.join(".").to_lowercase()
    };
    let problem = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => format!("`{field}` is not a known key"),
        kind if is_zero_for_nonzero(kind) => "must be positive, not 0".to_owned(),
        kind => kind.to_string(),
    };
    let fix = fix_for(&key, &err.kind);
    ConfigError { key, problem, fix }
}

/// serde's refusal of a 0 for a `NonZero*` key.
fn is_zero_for_nonzero(kind: &figment::error::Kind) -> bool {
    use figment::error::{Actual, Kind};
    matches!(
        kind,
        Kind::InvalidValue(Actual::Unsigned(0) | Actual::Signed(0), expected)
            if expected.starts_with("a nonzero")
    )
}

/// The fix for a value that did not parse, from the section it belongs to.
fn fix_for(key: &str, kind: &figment::error::Kind) -> String {
    if matches!(kind, figment::error::Kind::UnknownField(..)) {
        return "check the spelling against the documented config.toml".into();
    }
    // A list entry's key ends in its index (`registration.admins.0`).
    let key = key
        .rsplit_once('.')
        .filter(|(_, last)| last.parse::<usize>().is_ok())
        .map_or(key, |(list, _)| list);
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    let fix = match section {
        "server" => ServerConfig::fix(field),
        "github" => GithubConfig::fix(field),
        "registration" => RegistrationConfig::fix(field),
        "cloud" => CloudConfig::fix(field),
        "launch" => LaunchConfig::fix(field),
        "provision" => ProvisionConfig::fix(field),
        "image" => ImageConfig::fix(field),
        // `profiles.<index>.<field>`
        "profiles" => super::Profiles::fix(field.rsplit('.').next().unwrap_or(field)),
        "api" => ApiConfig::fix(field),
        "storage" => StorageConfig::fix(field),
        "pool" => super::PoolConfig::fix(field),
        _ => None,
    };
    fix.unwrap_or("see the comment for this key in config.toml")
        .into()
}
