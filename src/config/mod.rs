//! Typed configuration: `config.toml`, then `STACKBINDER_<SECTION>__<KEY>`
//! environment overrides; secrets from the value itself or from a file.
//!
//! One module per section, each with its defaults, its checks and its
//! durations; this one loads the file and the environment, lets each
//! section check itself, and resolves the secrets. `error` says what is
//! wrong in the operator's terms.
//!
//! Every problem is reported as the key, what is wrong with its value and how
//! to fix it, because the person reading it is an operator at a terminal.
//! A value that must be positive is a `NonZero*`, so a 0 is refused while the
//! file is read, with the fix its section gives for that key.

mod api;
mod cloud;
mod database;
mod error;
mod github;
mod image;
mod launch;
mod pool;
mod profiles;
mod provision;
mod registration;
mod server;
mod simulator;
mod storage;

pub use api::ApiConfig;
pub use cloud::{Backend, CloudConfig, JupyterAccess};
pub use database::DatabaseConfig;
pub use error::ConfigError;
use error::{URL_FIX, from_figment_error};
pub use github::GithubConfig;
pub use image::ImageConfig;
pub use launch::LaunchConfig;
pub use pool::{PinnedRepoConfig, PoolConfig, ScheduleEntry};
pub use profiles::{Profile, Profiles};
pub use provision::ProvisionConfig;
pub use registration::{GithubUser, OrgOrTeam, RegistrationConfig};
pub use server::ServerConfig;
pub use simulator::SimulatorConfig;
pub use storage::StorageConfig;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub github: GithubConfig,
    #[serde(default)]
    pub registration: RegistrationConfig,
    #[serde(default)]
    pub cloud: CloudConfig,
    #[serde(default)]
    pub launch: LaunchConfig,
    #[serde(default)]
    pub provision: ProvisionConfig,
    #[serde(default)]
    pub simulator: SimulatorConfig,
    #[serde(default)]
    pub image: ImageConfig,
    /// `[[profiles]]`: empty means every VM is made of `[cloud]`.
    #[serde(default)]
    pub profiles: Profiles,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub pool: PoolConfig,
}

/// Secrets resolved from their value or file, kept apart from `Config` so
/// that the raw settings can be shown without them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub github_client_secret: Option<SecretString>,
    pub registration_secret: Option<SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

impl Config {
    /// Load `path` (if given) and the environment, then validate.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} does not exist", path.display()),
                    "give the path of a config.toml (see config.toml in the repository)",
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Self::from_figment(
            figment.merge(
                Env::prefixed("STACKBINDER_")
                    .ignore(&["CONFIG"])
                    .split("__"),
            ),
        )
    }

    /// Defaults and the environment only (the demo needs no file).
    pub fn defaults() -> Self {
        Self::from_figment(Figment::new()).expect("the defaults are valid")
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(from_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Each section checks itself; the secrets are read once to see that
    /// they can be.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.database.validate()?;
        self.cloud.validate()?;
        self.launch.validate()?;
        self.provision.validate()?;
        self.image.validate()?;
        self.profiles.validate()?;
        self.storage.validate()?;
        self.pool.validate()?;
        self.simulator.validate()?;
        self.secrets().map(|_| ())
    }

    /// Read the secrets from their values or files.
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        Ok(Secrets {
            github_client_secret: secret_from(
                "github.client_secret",
                &self.github.client_secret,
                &self.github.client_secret_file,
            )?,
            registration_secret: secret_from(
                "registration.secret",
                &self.registration.secret,
                &self.registration.secret_file,
            )?,
        })
    }
}

fn secret_from(
    key: &str,
    value: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    use secrecy::ExposeSecret;
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            "both the value and the _file variant are set",
            format!("keep only one of `{key}` and `{key}_file`"),
        )),
        (Some(v), None) if v.expose_secret().trim().is_empty() => Ok(None),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    &format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                    "point it at a readable file that holds only the secret",
                )
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(ConfigError::new(
                    &format!("{key}_file"),
                    format!("{} is empty", path.display()),
                    "write the secret into the file",
                ));
            }
            Ok(Some(SecretString::from(text.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn load_str(toml: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let c = load_str(include_str!("../../config.toml")).expect("config.toml loads");
        assert_eq!(c.cloud.volume_size_gb.get(), 150);
        let defaults = ImageConfig::default();
        assert_eq!(c.image.prebuild, defaults.prebuild);
        assert_eq!(c.image.docker_mtu, defaults.docker_mtu);
        assert_eq!(c.image.repo2docker_version, defaults.repo2docker_version);
        assert_eq!(c.image.base_image, defaults.base_image);
        assert_eq!(c.image.builder_flavor, defaults.builder_flavor);
        assert_eq!(c.image.build_timeout_minutes.get(), 90);
        assert_eq!(c.image.snapshot_timeout_minutes.get(), 60);
        assert_eq!(c.storage.home_volume_gb(), Some(10));
    }

    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    #[test]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STACKBINDER_CLOUD__FLAVOR", "m1.xlarge");
            jail.set_env("STACKBINDER_SERVER__BIND", "127.0.0.1:9999");
            jail.create_file("c.toml", "[cloud]\nflavor = \"m1.small\"")?;
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.cloud.flavor, "m1.xlarge");
            assert_eq!(c.server.bind.port(), 9999);
            Ok(())
        });
    }

    #[allow(clippy::result_large_err)]
    #[test]
    fn secrets_can_come_from_a_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("secret", "s3cret-from-file\n")?;
            jail.set_env("STACKBINDER_REGISTRATION__SECRET_FILE", "secret");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let secret = c
                .secrets()
                .map_err(|e| e.to_string())?
                .registration_secret
                .unwrap();
            assert_eq!(
                secrecy::ExposeSecret::expose_secret(&secret),
                "s3cret-from-file"
            );
            Ok(())
        });
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = load_str("").unwrap();
        assert_eq!(c.cloud.volume_size_gb.get(), 150);
        assert_eq!(c.cloud.security_groups, ["ssh-whitelist", "Open-top"]);
    }

    /// Every key that must be positive, with a piece of the fix that says
    /// what to use instead of 0.
    const POSITIVE_KEYS: &[(&str, &str)] = &[
        ("server.session_idle_minutes", "e.g. 480"),
        ("server.session_max_hours", "e.g. 24"),
        ("github.timeout_seconds", "e.g. 10"),
        ("registration.wrong_guesses", "wrong_guesses = 10"),
        (
            "registration.guess_window_minutes",
            "guess_window_minutes = 10",
        ),
        ("cloud.volume_size_gb", "size in GB, e.g. 150"),
        (
            "cloud.request_timeout_seconds",
            "request_timeout_seconds = 30",
        ),
        (
            "cloud.max_concurrent_requests",
            "max_concurrent_requests = 8",
        ),
        ("launch.jupyter_port", "e.g. 8888"),
        ("launch.boot_timeout_seconds", "e.g. 600"),
        ("launch.clone_timeout_seconds", "e.g. 600"),
        ("launch.build_timeout_seconds", "e.g. 3600"),
        ("launch.start_timeout_seconds", "e.g. 300"),
        ("provision.poll_interval_ms", "poll_interval_ms = 2000"),
        ("provision.concurrency", "concurrency = 8"),
        ("image.build_timeout_minutes", "build_timeout_minutes = 90"),
        (
            "image.snapshot_timeout_minutes",
            "snapshot_timeout_minutes = 60",
        ),
        ("api.requests_per_minute", "requests_per_minute = 120"),
    ];

    #[test]
    fn a_zero_where_a_value_must_be_positive_names_the_key_and_what_to_use() {
        for (key, fix) in POSITIVE_KEYS {
            let (section, field) = key.split_once('.').unwrap();
            let e = load_str(&format!("[{section}]\n{field} = 0")).unwrap_err();
            assert_eq!(e.key, *key, "{e}");
            assert_eq!(e.problem, "must be positive, not 0", "{e}");
            assert!(e.fix.contains(fix), "{key}: {e}");
            // A value that is no number at all gets the same fix.
            let e = load_str(&format!("[{section}]\n{field} = \"many\"")).unwrap_err();
            assert!(e.fix.contains(fix), "{key}: {e}");
            // And 1 is fine.
            load_str(&format!("[{section}]\n{field} = 1")).unwrap();
        }
    }

    #[test]
    fn the_documented_example_says_which_keys_must_be_positive() {
        let example = include_str!("../../config.toml");
        let lines: Vec<&str> = example.lines().collect();
        for (key, _) in POSITIVE_KEYS {
            let (section, field) = key.split_once('.').unwrap();
            let start = lines
                .iter()
                .position(|l| *l == format!("[{section}]"))
                .unwrap_or_else(|| panic!("[{section}] in config.toml"));
            let at = start
                + lines[start..]
                    .iter()
                    .position(|l| l.starts_with(&format!("{field} = ")))
                    .unwrap_or_else(|| panic!("{key} in config.toml"));
            // The paragraph of comments (and keys) that ends with the key.
            let paragraph = lines[..at]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty())
                .map(|l| l.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                paragraph.contains("must be at least 1"),
                "config.toml does not say that {key} must be at least 1"
            );
        }
    }

    #[allow(clippy::result_large_err)]
    #[test]
    fn a_zero_from_the_environment_is_refused_the_same_way() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STACKBINDER_PROVISION__CONCURRENCY", "0");
            let e = Config::load(None).unwrap_err();
            assert_eq!(
                e.to_string(),
                "configuration key `provision.concurrency`: must be positive, not 0\n  \
                 fix: use a positive number of VMs, e.g. concurrency = 8"
            );
            Ok(())
        });
    }

    #[test]
    fn a_secret_and_its_file_cannot_both_be_set() {
        let e = load_str("[registration]\nsecret = \"abc\"\nsecret_file = \"/x\"").unwrap_err();
        assert_eq!(e.key, "registration.secret");
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = load_str("[registration]\nsecret = \"hunter2-hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.secrets().unwrap()).contains("hunter2"));
    }
}
