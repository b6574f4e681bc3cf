//! The reconciler compares the store with what the cloud really has and
//! repairs the difference: a VM whose server was deleted outside stackbinder
//! is cleaned up and marked gone; servers, volumes and floating IPs of ours
//! that no record explains (a crash, a bug, a manual mistake) are deleted
//! once they have been seen for a grace period.

use super::driver::StepError;
use super::{DeleteReason, Provisioner};
use crate::cloud::META_VM;
use crate::domain::{VmId, VmState};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// What the reconciler remembers between runs.
#[derive(Default)]
pub(super) struct Memory {
    last_run: Option<Instant>,
    /// When each unexplained server/volume/floating IP was first seen.
    orphans_seen: HashMap<String, Instant>,
}

impl Provisioner {
    pub(super) async fn reconcile_if_due(&self) -> Result<(), StepError> {
        {
            let mut memory = self.inner.reconciler.lock().expect("lock");
            let due = memory
                .last_run
                .is_none_or(|t| t.elapsed() >= self.inner.settings.reconcile_interval);
            if !due {
                return Ok(());
            }
            memory.last_run = Some(Instant::now());
        }
        self.reconcile().await
    }

    /// One full comparison of store and cloud.
    #[tracing::instrument(name = "reconcile", skip_all)]
    pub async fn reconcile(&self) -> Result<(), StepError> {
        let store = &self.inner.store;
        let cloud = &self.inner.cloud;
        let owned = cloud.list_owned().await?;
        let live = store.live_vms().await?;

        // Servers the cloud has, by id; and which of them a live VM explains.
        let server_ids: HashSet<&str> = owned.servers.iter().map(|s| s.id.as_str()).collect();
        let live_ids: HashSet<VmId> = live.iter().map(|vm| vm.id).collect();

        // 1. Live VMs whose server vanished: clean up what is left, mark gone.
        for vm in &live {
            let Some(server_id) = vm.server_id.as_deref() else {
                continue;
            };
            let settled = matches!(
                vm.state,
                VmState::Booting | VmState::Building | VmState::Ready | VmState::Failed
            );
            // The same grace as for orphans: a server that was just made
            // may not be listed yet.
            let old_enough = (chrono::Utc::now() - vm.phase_started_at)
                .to_std()
                .unwrap_or_default()
                >= self.inner.settings.orphan_grace;
            if settled && old_enough && !server_ids.contains(server_id) {
                tracing::warn!(vm = %vm.id, "the server was deleted outside stackbinder");
                self.request_delete(
                    vm.id,
                    DeleteReason::Vanished,
                    "the server was deleted outside stackbinder",
                )
                .await?;
            }
        }

        // 2. What no live VM explains.
        let mut unexplained: Vec<(String, Orphan)> = Vec::new();
        let mut attached: HashSet<&str> = HashSet::new();
        for server in &owned.servers {
            let explained = server
                .metadata
                .get(META_VM)
                .and_then(|id| id.parse::<VmId>().ok())
                .is_some_and(|id| live_ids.contains(&id));
            if explained {
                attached.extend(server.volume_ids.iter().map(String::as_str));
            } else {
                unexplained.push((server.id.clone(), Orphan::Server));
            }
        }
        let recorded_volumes: HashSet<&str> = live
            .iter()
            .flat_map(|vm| vm.volume_ids.0.iter().map(String::as_str))
            .collect();
        for volume in &owned.volume_ids {
            if !attached.contains(volume.as_str()) && !recorded_volumes.contains(volume.as_str()) {
                unexplained.push((volume.clone(), Orphan::Volume));
            }
        }
        let recorded_fips: HashSet<&str> = live
            .iter()
            .filter_map(|vm| vm.floating_ip_id.as_deref())
            .collect();
        if self.inner.settings.cloud.release_floating_ip {
            for fip in &owned.floating_ips {
                if !recorded_fips.contains(fip.id.as_str()) {
                    unexplained.push((fip.id.clone(), Orphan::FloatingIp));
                }
            }
        }

        // 3. Delete what has stayed unexplained for the grace period.
        let grace = self.inner.settings.orphan_grace;
        let ripe: Vec<(String, Orphan)> = {
            let mut memory = self.inner.reconciler.lock().expect("lock");
            let now = Instant::now();
            let current: HashSet<&String> = unexplained.iter().map(|(id, _)| id).collect();
            memory.orphans_seen.retain(|id, _| current.contains(id));
            unexplained
                .iter()
                .filter(|(id, _)| {
                    now.duration_since(*memory.orphans_seen.entry(id.clone()).or_insert(now))
                        >= grace
                })
                .cloned()
                .collect()
        };
        for (id, kind) in ripe {
            tracing::warn!(id, kind = ?kind, "deleting an orphan stackbinder left in the cloud");
            let done = match kind {
                Orphan::Server => cloud.delete_server(&id).await,
                Orphan::Volume => cloud.delete_volume(&id).await,
                Orphan::FloatingIp => cloud.release_floating_ip(&id).await,
            };
            if let Err(e) = done {
                tracing::warn!(id, error = %e, "could not delete an orphan; will retry");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Orphan {
    Server,
    Volume,
    FloatingIp,
}
