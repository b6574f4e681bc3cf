//! The last time each VM's Jupyter was used through the proxy: stamped in
//! memory on every request and WebSocket read or write (one atomic store),
//! written to the store now and then, read by idle culling. This is what
//! configurable-http-proxy gives JupyterHub's culler.

use crate::domain::VmId;
use crate::store::{Store, StoreError};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// No activity recorded yet.
const NEVER: i64 = i64::MIN;

#[derive(Clone, Default)]
pub struct Activity {
    stamps: Arc<Mutex<HashMap<VmId, Arc<Stamp>>>>,
}

/// The activity of one VM; a WebSocket holds one for its whole life.
pub struct Stamp {
    /// Milliseconds since the epoch of the latest use.
    last: AtomicI64,
    /// What the store was last told.
    flushed: AtomicI64,
}

impl Stamp {
    pub fn touch(&self) {
        self.last
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn last(&self) -> Option<DateTime<Utc>> {
        match self.last.load(Ordering::Relaxed) {
            NEVER => None,
            ms => Utc.timestamp_millis_opt(ms).single(),
        }
    }
}

impl Activity {
    /// The stamp of `vm`, made on first use.
    pub fn stamp(&self, vm: VmId) -> Arc<Stamp> {
        self.stamps
            .lock()
            .expect("activity lock")
            .entry(vm)
            .or_insert_with(|| {
                Arc::new(Stamp {
                    last: AtomicI64::new(NEVER),
                    flushed: AtomicI64::new(NEVER),
                })
            })
            .clone()
    }

    /// When `vm` was last used through the proxy by this process.
    pub fn last(&self, vm: VmId) -> Option<DateTime<Utc>> {
        self.stamps
            .lock()
            .expect("activity lock")
            .get(&vm)
            .and_then(|s| s.last())
    }

    /// Write what changed since the last flush to the store (the latest of
    /// it and what the store holds wins), and forget VMs that are no
    /// longer ready. Returns how many VMs were written.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let changed: Vec<(VmId, Arc<Stamp>)> = self
            .stamps
            .lock()
            .expect("activity lock")
            .iter()
            .filter(|(_, s)| s.last.load(Ordering::Relaxed) != s.flushed.load(Ordering::Relaxed))
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        let mut written = 0;
        for (vm, stamp) in changed {
            let ms = stamp.last.load(Ordering::Relaxed);
            let Some(at) = stamp.last() else { continue };
            if store.record_proxied_activity(vm, at).await? {
                stamp.flushed.store(ms, Ordering::Relaxed);
                written += 1;
            } else {
                self.stamps.lock().expect("activity lock").remove(&vm);
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_is_the_last_activity() {
        let activity = Activity::default();
        let vm = VmId::new();
        assert_eq!(activity.last(vm), None);
        let before = Utc::now() - chrono::Duration::milliseconds(1);
        activity.stamp(vm).touch();
        let last = activity.last(vm).expect("recorded");
        assert!(last >= before && last <= Utc::now(), "{last}");
        assert_eq!(activity.last(VmId::new()), None);
    }
}
