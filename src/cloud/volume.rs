//! A volume as stackbinder makes and reads it: the users' home volumes,
//! which outlive their VMs (`[storage]`). Boot volumes are made by Nova
//! from the block device mapping and need none of this.

use serde::Serialize;
use std::collections::BTreeMap;

/// Marks a user's home volume: the owner's GitHub id. A volume carrying it
/// is never an orphan and never deleted with a VM.
pub const META_HOME: &str = "stackbinder_home";

/// A new volume (Cinder "Create a volume").
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    pub size_gb: u32,
    /// Unset: the cloud's default type.
    pub volume_type: Option<String>,
    /// Unset: the cloud's default zone.
    pub availability_zone: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Our own small view of Cinder's volume status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VolumeStatus {
    Creating,
    Available,
    /// Attached, attaching or reserved for an attachment.
    InUse,
    /// Being detached from a server that is going away.
    Detaching,
    /// It will not become usable by waiting (`error`, `deleting`, ...:
    /// Cinder's word).
    Broken(String),
    /// Busy with something that ends on its own (`downloading`,
    /// `extending`, ...).
    Busy(String),
}

impl VolumeStatus {
    /// From Cinder's status word.
    pub fn from_cinder(status: &str) -> Self {
        match status {
            "creating" => Self::Creating,
            "available" => Self::Available,
            "in-use" | "attaching" | "reserved" => Self::InUse,
            "detaching" => Self::Detaching,
            s if s.starts_with("error") || s == "deleting" => Self::Broken(s.to_owned()),
            s => Self::Busy(s.to_owned()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    pub id: String,
    pub status: VolumeStatus,
    pub size_gb: u32,
    pub availability_zone: Option<String>,
    /// The servers it is attached to.
    pub attached_to: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cinder_states_map_to_ours() {
        assert_eq!(
            VolumeStatus::from_cinder("available"),
            VolumeStatus::Available
        );
        assert_eq!(VolumeStatus::from_cinder("reserved"), VolumeStatus::InUse);
        assert_eq!(
            VolumeStatus::from_cinder("detaching"),
            VolumeStatus::Detaching
        );
        assert_eq!(
            VolumeStatus::from_cinder("error_restoring"),
            VolumeStatus::Broken("error_restoring".into())
        );
        assert_eq!(
            VolumeStatus::from_cinder("extending"),
            VolumeStatus::Busy("extending".into())
        );
    }
}
