//! `[image]`: the snapshot image every VM boots from, and how
//! `stackbinder image build` makes it (`cloud-init/base-image.yaml`,
//! rendered by `cloud_init::render_base_image`).

use super::ConfigError;
use super::launch::{LaunchConfig, repo_specs};
use crate::domain::RepoSpec;
use serde::Deserialize;
use std::num::NonZeroU64;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Repositories built once into the image to warm Docker's layer cache.
    #[serde(deserialize_with = "repo_specs")]
    pub prebuild: Vec<RepoSpec>,
    /// MTU of Docker's networks: below the cloud network's, or builds hang.
    pub docker_mtu: u16,
    /// The jupyter-repo2docker release installed from PyPI.
    pub repo2docker_version: String,
    /// The stock image `stackbinder image build` boots (name or id).
    pub base_image: String,
    /// The flavor of the builder VM; its root disk holds the whole image.
    pub builder_flavor: String,
    /// The builder must power off within this long.
    pub build_timeout_minutes: NonZeroU64,
    /// The snapshot must be active in Glance within this long.
    pub snapshot_timeout_minutes: NonZeroU64,
}

impl ImageConfig {
    /// The builder must power off within this long.
    pub fn build_timeout(&self) -> Duration {
        Duration::from_secs(self.build_timeout_minutes.get() * 60)
    }

    /// The snapshot must be active in Glance within this long.
    pub fn snapshot_timeout(&self) -> Duration {
        Duration::from_secs(self.snapshot_timeout_minutes.get() * 60)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(576..=9000).contains(&self.docker_mtu) {
            return Err(ConfigError::new(
                "image.docker_mtu",
                format!("{} is not a usable MTU", self.docker_mtu),
                "use the cloud network's MTU minus its overhead, e.g. 1400 (576 to 9000)",
            ));
        }
        let version = &self.repo2docker_version;
        let version_ok = !version.is_empty()
            && version.len() <= 40
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-'));
        if !version_ok {
            return Err(ConfigError::new(
                "image.repo2docker_version",
                format!("{version:?} is not a release number"),
                "write a jupyter-repo2docker release from PyPI, e.g. \"2026.4.0\"",
            ));
        }
        if self.base_image.trim().is_empty() || self.builder_flavor.trim().is_empty() {
            return Err(ConfigError::new(
                "image.base_image",
                "the image build needs a base image and a builder flavor",
                "set image.base_image to a stock Ubuntu 24.04 image and image.builder_flavor to a flavor with a root disk",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "prebuild" => Some(
                "list https git URLs, e.g. [\"https://github.com/binder-examples/requirements\"]",
            ),
            "build_timeout_minutes" => {
                Some("use a positive number of minutes, e.g. build_timeout_minutes = 90")
            }
            "snapshot_timeout_minutes" => {
                Some("use a positive number of minutes, e.g. snapshot_timeout_minutes = 60")
            }
            _ => None,
        }
    }
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            prebuild: vec![LaunchConfig::default().default_repo],
            docker_mtu: 1400,
            repo2docker_version: "2026.4.0".into(),
            base_image: "ubuntu-24.04".into(),
            builder_flavor: "m1.large".into(),
            build_timeout_minutes: const { NonZeroU64::new(90).unwrap() },
            snapshot_timeout_minutes: const { NonZeroU64::new(60).unwrap() },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn the_image_build_needs_a_base_image_and_a_builder_flavor() {
        for toml in [
            "[image]\nbase_image = \"\"",
            "[image]\nbuilder_flavor = \" \"",
        ] {
            assert_eq!(
                load_str(toml).unwrap_err().key,
                "image.base_image",
                "{toml}"
            );
        }
        let c = load_str("[image]\nbuilder_flavor = \"m1.xlarge\"").unwrap();
        assert_eq!(c.image.builder_flavor, "m1.xlarge");
    }

    #[test]
    fn the_image_section_has_the_old_tools_mtu_and_a_pinned_repo2docker() {
        let c = load_str("").unwrap();
        assert_eq!(c.image.docker_mtu, 1400);
        assert_eq!(c.image.prebuild, [c.launch.default_repo]);
        assert!(!c.image.repo2docker_version.is_empty());
    }

    #[test]
    fn bad_image_settings_name_the_key() {
        for (toml, key) in [
            (
                "[image]\nprebuild = [\"git@github.com:a/b\"]",
                "image.prebuild",
            ),
            ("[image]\ndocker_mtu = 100", "image.docker_mtu"),
            ("[image]\ndocker_mtu = 70000", "image.docker_mtu"),
            (
                "[image]\nrepo2docker_version = \"1.0; reboot\"",
                "image.repo2docker_version",
            ),
            (
                "[image]\nrepo2docker_version = \"\"",
                "image.repo2docker_version",
            ),
        ] {
            assert_eq!(load_str(toml).unwrap_err().key, key, "{toml}");
        }
    }

    #[test]
    fn the_build_timeouts_are_in_minutes() {
        let c =
            load_str("[image]\nbuild_timeout_minutes = 2\nsnapshot_timeout_minutes = 3").unwrap();
        assert_eq!(c.image.build_timeout().as_secs(), 120);
        assert_eq!(c.image.snapshot_timeout().as_secs(), 180);
    }
}
