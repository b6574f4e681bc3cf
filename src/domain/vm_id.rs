use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Our identifier for a VM (also written into the server's metadata, which
/// is how a server is found again after a crash). Stored as hyphenated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmId(Uuid);

impl VmId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for VmId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for VmId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| format!("{s:?} is not a VM id"))
    }
}

// Stored as its hyphenated text in both stores (a TEXT column), so that a
// database made by SQLite and one made by PostgreSQL hold the same values.
super::text_column::stored_as_text!(@column VmId, VmId::from_str, |id| id.to_string());
