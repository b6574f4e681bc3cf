use super::Phase;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a VM is in its life. Stored as lower-case text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    /// Recorded; the provisioner has not touched the cloud yet.
    Requested,
    /// The provisioner is asking the cloud for a server.
    Creating,
    /// The server exists and Nova is booting it.
    Booting,
    /// The server runs; cloud-init is cloning and building the repository.
    Building,
    /// Jupyter answers; the owner has a link.
    Ready,
    /// Something went wrong; the server (if any) stays until deleted.
    Failed,
    /// Server, volumes and floating IP are being removed.
    Deleting,
    /// Nothing is left in the cloud.
    Deleted,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Creating => "creating",
            Self::Booting => "booting",
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    /// A user may ask for deletion (everything but deleting/deleted).
    pub fn can_delete(self) -> bool {
        !matches!(self, Self::Deleting | Self::Deleted)
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the VM itself reports while in `building` (the launch script's phases).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    Cloning,
    Building,
    Starting,
    Ready,
    Failed,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cloning => "cloning",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// The phase of the launch script this report says it is in: `ready`
    /// is the end of `starting` (Jupyter runs, not yet known to answer);
    /// `failed` says nothing about where.
    pub fn phase(self) -> Option<Phase> {
        match self {
            Self::Cloning => Some(Phase::Cloning),
            Self::Building => Some(Phase::Building),
            Self::Starting | Self::Ready => Some(Phase::Starting),
            Self::Failed => None,
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
