//! A counter bumped by every write of this process that can take access
//! away: a VM leaving a state, a deletion asked for, a login revoked, a
//! session ended. What is remembered of who may reach which VM (the
//! proxy's grants) is valid only for the generation it was checked in, so
//! such a write drops it at once, without a query per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Default)]
pub struct AccessGeneration(Arc<AtomicU64>);

impl AccessGeneration {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// After the write has committed: a check that read the database
    /// before it must not be remembered (see `current`'s callers).
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
