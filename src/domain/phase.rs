use serde::Serialize;
use std::fmt;

/// A phase of the launch script on the VM, in the order it runs them. Its
/// clock is the phase's timeout; a failure is counted and told by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Cloning,
    Building,
    Starting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cloning => "cloning",
            Self::Building => "building",
            Self::Starting => "starting",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
