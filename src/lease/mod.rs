//! Leadership: any number of replicas share one database, and the work that
//! touches the cloud (the driver, the reconciler, expiry, idle culling) runs
//! on exactly one of them, the holder of the `driver` lease.
//!
//! The lease is a row in the store (`leases`): its holder, an epoch that
//! grows by one at every take-over, and when it expires. `decision` decides
//! from the row what to do (a pure function), `renewal` carries it out every
//! lease/3 and publishes this replica's `Role`; `gate` runs the background
//! work while the role is leader and cancels it when it is not. The epoch
//! is also a fence: the driver's writes name it, and the store refuses them
//! once the row carries another (`store::StoreError::Fenced`).
//!
//! On SQLite (one process) the same code runs; it simply always wins.

mod decision;
mod gate;
mod renewal;

pub use decision::{Decision, Observed, decide};
pub use gate::while_leader;
pub use renewal::keep_leadership;

use std::fmt;
use tokio::sync::watch;

/// The lease the driver's work is gated on.
pub const DRIVER: &str = "driver";

/// Who this replica is, in the lease's `holder` column: made once at start
/// (host, process id and a random part), so a restarted process is a new
/// replica and never mistakes its predecessor's lease for its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplicaId(String);

impl ReplicaId {
    pub fn generate() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let random: u32 = rand::random();
        Self(format!("{host}:{}:{random:08x}", std::process::id()))
    }

    /// An id as the store holds it.
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many times the lease changed hands: the first holder has epoch 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(i64);

impl Epoch {
    pub const FIRST: Self = Self(1);

    pub fn from_stored(epoch: i64) -> Self {
        Self(epoch)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The epoch of the next take-over.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the store is asked to check before a write of the leader: that the
/// lease `lease` is still held by `holder` at `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: &'static str,
    pub holder: ReplicaId,
    pub epoch: Epoch,
}

/// This replica's part in the background work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Another replica drives, or nobody could be made sure of yet.
    Standby,
    /// This replica holds the lease: its writes carry this fence.
    Leader(Fence),
}

impl Role {
    /// "leader" or "standby" (for `/healthz`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Leader(_) => "leader",
        }
    }
}

/// This replica's role as the renewal loop last published it; cheap to
/// clone and to read.
#[derive(Debug, Clone)]
pub struct Leadership {
    me: ReplicaId,
    role: watch::Receiver<Role>,
    publish: std::sync::Arc<watch::Sender<Role>>,
}

impl Leadership {
    /// A standby replica with a new id.
    pub fn new() -> Self {
        Self::for_replica(ReplicaId::generate())
    }

    pub fn for_replica(me: ReplicaId) -> Self {
        let (publish, role) = watch::channel(Role::Standby);
        Self {
            me,
            role,
            publish: std::sync::Arc::new(publish),
        }
    }

    pub fn me(&self) -> &ReplicaId {
        &self.me
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// The fence of the lease this replica holds, if it holds it.
    pub fn fence(&self) -> Option<Fence> {
        match &*self.role.borrow() {
            Role::Leader(fence) => Some(fence.clone()),
            Role::Standby => None,
        }
    }

    /// Resolves once this replica leads (at once if it does).
    pub async fn until_leader(&self) {
        let mut role = self.role.clone();
        // The sender lives as long as `self`: the wait ends only by leading.
        let _ = role.wait_for(|r| matches!(r, Role::Leader(_))).await;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    pub(crate) fn publish(&self, role: Role) {
        self.publish.send_if_modified(|current| {
            let changed = *current != role;
            *current = role;
            changed
        });
    }
}

impl Default for Leadership {
    fn default() -> Self {
        Self::new()
    }
}
