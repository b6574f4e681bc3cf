//! `[[profiles]]`: what a VM may be (its flavor, boot volume, image, GPU)
//! and who may launch it. The first profile is the default. Without any,
//! every VM is made of `[cloud]` as before.

use super::{ConfigError, OrgOrTeam};
use crate::access::LinkLabel;
use crate::domain::ProfileName;
use serde::Deserialize;
use std::collections::HashSet;
use std::num::NonZeroU32;

/// One `[[profiles]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: ProfileName,
    /// What the launch page says about it ("4 cores, 16 GB, for most courses").
    pub description: String,
    /// Nova flavor, name or id.
    pub flavor: String,
    pub volume_size_gb: NonZeroU32,
    /// The image to boot, name or id; unset: `cloud.image`.
    #[serde(default)]
    pub image: Option<String>,
    /// Run the user's container with `--gpus all`: the image needs the
    /// NVIDIA driver and container toolkit.
    #[serde(default)]
    pub gpu: bool,
    /// Open to users who registered through a link with one of these
    /// labels (`users link create --label ...`; the link of
    /// `registration.secret` is labelled "registration link").
    #[serde(default)]
    pub links: Vec<String>,
    /// Open to members of these organizations or teams, as
    /// `registration.allowed_orgs` is written.
    #[serde(default)]
    pub orgs: Vec<OrgOrTeam>,
}

impl Profile {
    /// Neither `links` nor `orgs`: every user who may launch may use it.
    pub fn is_open_to_all(&self) -> bool {
        self.links.is_empty() && self.orgs.is_empty()
    }
}

/// Every configured profile, in the order of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Profiles(Vec<Profile>);

impl Profiles {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.0.iter()
    }

    /// The first: what a launch without `?profile=` gets.
    pub fn default_profile(&self) -> Option<&Profile> {
        self.0.first()
    }

    pub fn get(&self, name: &ProfileName) -> Option<&Profile> {
        self.0.iter().find(|p| &p.name == name)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, p) in self.0.iter().enumerate() {
            let key = |field: &str| format!("profiles.{i}.{field}");
            if !names.insert(&p.name) {
                return Err(ConfigError::new(
                    &key("name"),
                    format!("two profiles are named {:?}", p.name.as_str()),
                    "give every profile a name of its own",
                ));
            }
            let description = p.description.trim();
            if description.is_empty() || description.len() > 200 {
                return Err(ConfigError::new(
                    &key("description"),
                    "must be 1 to 200 characters",
                    "say in a few words what the profile is for, e.g. \"4 cores, 16 GB RAM\"",
                ));
            }
            if p.flavor.trim().is_empty() {
                return Err(ConfigError::new(
                    &key("flavor"),
                    "is empty",
                    "name a flavor from `openstack flavor list`",
                ));
            }
            if p.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
                return Err(ConfigError::new(
                    &key("image"),
                    "is empty",
                    "name an image from `openstack image list`, or leave it out for cloud.image",
                ));
            }
            if p.gpu && p.image.is_none() {
                return Err(ConfigError::new(
                    &key("image"),
                    "a GPU profile needs its own image",
                    "set image to a snapshot with the NVIDIA driver and container toolkit",
                ));
            }
            if let Some(bad) = p.links.iter().find(|l| LinkLabel::parse(l).is_none()) {
                return Err(ConfigError::new(
                    &key("links"),
                    format!("{bad:?} is not a registration link label"),
                    "list the labels of registration links (1 to 100 characters), e.g. [\"Course 101\"]",
                ));
            }
        }
        Ok(())
    }

    /// How to fix a value of `field` (the last part of its key) that does
    /// not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "name" => Some("use 1 to 32 lower-case letters, digits, - or _, e.g. name = \"gpu\""),
            "volume_size_gb" => Some("set it to the boot volume size in GB, e.g. 150"),
            "orgs" => {
                Some("list organizations or org/team slugs, e.g. [\"my-org\", \"my-org/tutors\"]")
            }
            "gpu" => Some("write gpu = true or leave it out"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    const TWO: &str = r#"
[[profiles]]
name = "standard"
description = "4 cores, 16 GB"
flavor = "m1.large"
volume_size_gb = 100

[[profiles]]
name = "gpu"
description = "one GPU"
flavor = "g1.gpu"
volume_size_gb = 200
image = "gpu-snapshot"
gpu = true
links = ["GPU course"]
orgs = ["my-org/gpu"]
"#;

    #[test]
    fn profiles_load_in_order_and_the_first_is_the_default() {
        let c = load_str(TWO).unwrap();
        let names: Vec<_> = c.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["standard", "gpu"]);
        assert_eq!(
            c.profiles.default_profile().unwrap().name.as_str(),
            "standard"
        );
        let gpu = c.profiles.iter().nth(1).unwrap();
        assert!(gpu.gpu && !gpu.is_open_to_all());
        assert_eq!(gpu.orgs[0].team.as_deref(), Some("gpu"));
        assert!(c.profiles.default_profile().unwrap().is_open_to_all());
    }

    #[test]
    fn no_profiles_is_the_default() {
        assert!(load_str("").unwrap().profiles.is_empty());
    }

    #[test]
    fn bad_profiles_name_the_key_and_the_fix() {
        let twice = TWO.replace("name = \"gpu\"", "name = \"standard\"");
        let table: &[(&str, &str, &str)] = &[
            (&twice, "profiles.1.name", "a name of its own"),
            (
                &TWO.replace("description = \"one GPU\"", "description = \" \""),
                "profiles.1.description",
                "a few words",
            ),
            (
                &TWO.replace("flavor = \"g1.gpu\"", "flavor = \"\""),
                "profiles.1.flavor",
                "flavor list",
            ),
            (
                &TWO.replace("image = \"gpu-snapshot\"\n", ""),
                "profiles.1.image",
                "NVIDIA",
            ),
            (
                &TWO.replace("[\"GPU course\"]", "[\"\"]"),
                "profiles.1.links",
                "labels",
            ),
        ];
        for (toml, key, fix) in table {
            let e = load_str(toml).unwrap_err();
            assert_eq!(e.key, *key, "{e}");
            assert!(e.fix.contains(fix), "{e}");
        }
    }

    #[test]
    fn values_that_do_not_parse_get_the_fix_of_their_field() {
        let e = load_str(&TWO.replace("name = \"gpu\"", "name = \"GPU!\"")).unwrap_err();
        assert_eq!(e.key, "profiles.1.name", "{e}");
        assert!(e.fix.contains("lower-case"), "{e}");
        let e = load_str(&TWO.replace("volume_size_gb = 200", "volume_size_gb = 0")).unwrap_err();
        assert_eq!(e.key, "profiles.1.volume_size_gb", "{e}");
        assert!(e.fix.contains("150"), "{e}");
        let e = load_str(&TWO.replace("flavor = \"g1.gpu\"", "flavour = \"g1.gpu\"")).unwrap_err();
        assert!(e.problem.contains("not a known key"), "{e}");
    }
}
