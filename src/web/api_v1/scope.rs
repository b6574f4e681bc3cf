//! What a token may do: a closed set of scopes, stored space-separated.

use std::collections::BTreeSet;

/// The variants are named after the scope strings (`vm:read` is `VmRead`),
/// hence the shared prefix.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    VmRead,
    VmLaunch,
    VmDelete,
    /// `admin:*`: the admin routes (every VM, the users, the links). Only
    /// an admin may make such a token, and it works only while its owner
    /// is still an admin. It grants nothing on the owner's own VM.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Self::VmRead, Self::VmLaunch, Self::VmDelete, Self::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Self::VmRead => "vm:read",
            Self::VmLaunch => "vm:launch",
            Self::VmDelete => "vm:delete",
            Self::Admin => "admin:*",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A token's scopes; an unknown name in the database grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn parse(stored: &str) -> Self {
        Self(stored.split_whitespace().filter_map(Scope::parse).collect())
    }

    pub fn from_iter(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_names_grant_nothing() {
        let s = Scopes::parse("vm:read admin:* vm:everything admin");
        assert!(s.allows(Scope::VmRead) && s.allows(Scope::Admin));
        assert!(!s.allows(Scope::VmLaunch));
        assert_eq!(s.stored(), "vm:read admin:*");
        assert_eq!(Scopes::parse(&s.stored()), s);
    }
}
