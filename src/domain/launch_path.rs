use serde::{Deserialize, Serialize};
use std::fmt;

/// How a VM came to its owner: booted for them, or claimed from the warm
/// pool (already booted, maybe with the environment prebuilt). The status
/// page says which, and launch-time estimates are kept apart by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum LaunchPath {
    /// A server booted for this launch.
    Cold,
    /// A ready pool VM, claimed for this launch.
    Pool,
}

impl LaunchPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Pool => "pool",
        }
    }
}

impl fmt::Display for LaunchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
