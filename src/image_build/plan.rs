//! What `image build` makes, and how long each stage may take.

use crate::cloud_init::render_base_image;
use crate::config::{Config, ImageConfig, PinnedRepoConfig};
use std::time::Duration;

/// What to build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the new image.
    pub name: String,
    /// The stock image the builder boots, name or id.
    pub base_image: String,
    pub flavor: String,
    /// The rendered base-image cloud-config.
    pub user_data: String,
}

impl Plan {
    /// The plan of `[image]`, with the command line's overrides. The image
    /// is named after the day by default, so builds do not collide.
    pub fn from_config(
        image: &ImageConfig,
        name: Option<String>,
        base_image: Option<String>,
        flavor: Option<String>,
    ) -> Result<Self, String> {
        let name = name.unwrap_or_else(|| {
            format!(
                "stackbinder-snapshot-{}",
                chrono::Utc::now().format("%Y%m%d-%H%M")
            )
        });
        // Glance takes up to 255 characters; "-builder" is added for the VM.
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "{name:?} is not a usable image name: use 1 to 200 printable characters"
            ));
        }
        let pick = |flag: Option<String>, key: &str, configured: &str| {
            let value = flag.unwrap_or_else(|| configured.to_owned());
            if value.trim().is_empty() {
                Err(format!("{key} is empty"))
            } else {
                Ok(value)
            }
        };
        Ok(Self {
            name,
            base_image: pick(base_image, "--base-image", &image.base_image)?,
            flavor: pick(flavor, "--flavor", &image.builder_flavor)?,
            user_data: render_base_image(image, &[]),
        })
    }

    /// The same build, which also bakes the images of `pinned` into the
    /// snapshot under the names BinderHub gives them (`--prebuild`).
    pub fn prebuilding(mut self, image: &ImageConfig, pinned: &[PinnedRepoConfig]) -> Self {
        self.user_data = render_base_image(image, pinned);
        self
    }

    /// The builder VM's name.
    pub fn builder_name(&self) -> String {
        format!("{}-builder", self.name)
    }
}

/// How often to look, and how long each stage may take.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll: Duration,
    /// From the boot request until the builder has powered off.
    pub build_timeout: Duration,
    /// From `createImage` until the image is active.
    pub snapshot_timeout: Duration,
    /// Deleting the builder and its volumes, and the image.
    pub teardown_timeout: Duration,
}

impl Timing {
    /// The build's limits from `[image]`; the cloud is polled as often as
    /// the provisioner polls it (`provision.poll_interval_ms`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            poll: config.provision.poll_interval(),
            build_timeout: config.image.build_timeout(),
            snapshot_timeout: config.image.snapshot_timeout(),
            // Someone is waiting at the terminal: give up on a stuck
            // deletion sooner than the provisioner does, and say so.
            teardown_timeout: Duration::from_secs(600),
        }
    }
}

impl Timing {
    /// The longest a build can run, from boot to its last clean-up.
    pub fn whole_build(&self) -> chrono::Duration {
        let total = self.build_timeout + self.snapshot_timeout + self.teardown_timeout;
        chrono::Duration::from_std(total).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_takes_the_flags_over_the_configuration() {
        let image = ImageConfig::default();
        let plan = Plan::from_config(&image, None, None, None).unwrap();
        assert!(
            plan.name.starts_with("stackbinder-snapshot-20"),
            "{}",
            plan.name
        );
        assert_eq!(plan.base_image, image.base_image);
        assert_eq!(plan.flavor, image.builder_flavor);
        assert_eq!(plan.user_data, render_base_image(&image, &[]));
        let plan = Plan::from_config(
            &image,
            Some("snap".into()),
            Some("jammy".into()),
            Some("m1.xlarge".into()),
        )
        .unwrap();
        assert_eq!(
            (
                plan.name.as_str(),
                plan.base_image.as_str(),
                plan.flavor.as_str()
            ),
            ("snap", "jammy", "m1.xlarge")
        );
        assert_eq!(plan.builder_name(), "snap-builder");
        assert!(Plan::from_config(&image, Some("a\nb".into()), None, None).is_err());
        assert!(Plan::from_config(&image, Some(" ".into()), None, None).is_err());
        assert!(Plan::from_config(&image, None, Some("".into()), None).is_err());
    }
}
