//! How a build ends: the image, or the error and what the clean-up could
//! not delete.

use crate::cloud::CloudError;
use std::fmt;

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    pub name: String,
    /// Things the build could not delete after it succeeded (the builder),
    /// described so an operator can delete them by hand.
    pub left_behind: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("cannot {doing}: {source}")]
    Cloud {
        doing: &'static str,
        source: CloudError,
    },
    #[error("the build on the builder VM failed: {0}")]
    BuildFailed(String),
    #[error(
        "the builder powered off without reporting success (no `STACKBINDER-IMAGE-BUILD: OK` on its console); look at its console output above"
    )]
    NoVerdict,
    #[error("the builder VM went to ERROR: {0}")]
    BuilderError(String),
    #[error("the builder VM disappeared from the cloud before it finished")]
    BuilderVanished,
    #[error("the builder did not power off within {0} minutes (image.build_timeout_minutes)")]
    BuildTimedOut(u64),
    #[error("the snapshot ended {0} instead of active")]
    SnapshotFailed(String),
    #[error("the snapshot was not active within {0} minutes (image.snapshot_timeout_minutes)")]
    SnapshotTimedOut(u64),
    #[error("interrupted")]
    Interrupted,
}

/// A failed build, and what its clean-up could not delete.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: BuildError,
    pub left_behind: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.left_behind.is_empty() {
            write!(f, "; everything the build created was deleted")
        } else {
            write!(
                f,
                "; these could not be deleted, delete them by hand: {}",
                self.left_behind.join("; ")
            )
        }
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_what_is_left_behind() {
        let clean = Failure {
            error: BuildError::BuildFailed("pre-building x".into()),
            left_behind: vec![],
        };
        assert_eq!(
            clean.to_string(),
            "the build on the builder VM failed: pre-building x; everything the build created was deleted"
        );
        let dirty = Failure {
            error: BuildError::Interrupted,
            left_behind: vec!["builder server s1 (the cloud is unreachable)".into()],
        };
        assert!(
            dirty
                .to_string()
                .contains("delete them by hand: builder server s1")
        );
    }
}
