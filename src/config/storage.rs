//! `[storage]`: the per-user home volume that outlives the VMs (a Cinder
//! volume re-attached at every launch, mounted at `/home/jovyan/work`).

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Size of each user's home volume in GB; 0 turns home volumes off.
    pub home_volume_gb: u32,
    /// The Cinder volume type of new home volumes; unset: the cloud's default.
    pub volume_type: Option<String>,
    /// Delete a home volume no VM has used for this many days; 0 keeps
    /// every volume for ever.
    pub retention_days: u32,
}

impl StorageConfig {
    /// Whether users get a home volume, and of what size.
    pub fn home_volume_gb(&self) -> Option<u32> {
        (self.home_volume_gb > 0).then_some(self.home_volume_gb)
    }

    /// How long an unused home volume is kept; `None`: for ever.
    pub fn retention(&self) -> Option<chrono::Duration> {
        (self.retention_days > 0).then(|| chrono::Duration::days(i64::from(self.retention_days)))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(kind) = &self.volume_type
            && (kind.trim().is_empty() || kind.len() > 255)
        {
            return Err(ConfigError::new(
                "storage.volume_type",
                format!("{kind:?} is not a volume type"),
                "name a type from `openstack volume type list`, or leave it unset",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse.
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "home_volume_gb" => {
                Some("use a size in GB, e.g. home_volume_gb = 10, or 0 for no home volumes")
            }
            "retention_days" => Some(
                "use a number of days, e.g. retention_days = 90, or 0 to keep storage for ever",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn home_volumes_are_off_unless_sized() {
        assert_eq!(load_str("").unwrap().storage.home_volume_gb(), None);
        let c = load_str("[storage]\nhome_volume_gb = 10\nvolume_type = \"ssd\"").unwrap();
        assert_eq!(c.storage.home_volume_gb(), Some(10));
        assert_eq!(c.storage.volume_type.as_deref(), Some("ssd"));
        let e = load_str("[storage]\nhome_volume_gb = -1").unwrap_err();
        assert_eq!(e.key, "storage.home_volume_gb");
        assert!(e.fix.contains("home_volume_gb = 10"), "{e}");
        assert_eq!(c.storage.retention(), None, "kept for ever by default");
        let c = load_str("[storage]\nretention_days = 90").unwrap();
        assert_eq!(c.storage.retention(), Some(chrono::Duration::days(90)));
        let e = load_str("[storage]\nretention_days = -3").unwrap_err();
        assert!(e.fix.contains("retention_days = 90"), "{e}");
        let e = load_str("[storage]\nvolume_type = \" \"").unwrap_err();
        assert_eq!(e.key, "storage.volume_type");
    }
}
