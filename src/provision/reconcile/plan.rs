//! The reconciler's decision, pure: what the cloud showed, the records,
//! what earlier passes saw, the time and the rules in; the repairs due and
//! what to remember out. No I/O, so every rule has its table test.

use super::leftover_builders::abandoned;
use crate::cloud::{META_VM, Owned, Server};
use crate::domain::{VmId, VmState};
use crate::store::VmRecord;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// What earlier passes saw, for the grace periods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Live VMs whose server answered 404, and when it first did.
    missing_since: HashMap<VmId, DateTime<Utc>>,
    /// Unexplained servers, volumes and floating IPs, and when first seen.
    orphans_since: HashMap<String, DateTime<Utc>>,
}

/// What the cloud showed in one pass.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Everything carrying this installation's id.
    pub owned: Owned,
    /// For each VM of `to_look_up`: whether `GET /servers/{id}` found its
    /// server (any status, UNKNOWN included) rather than a 404.
    pub found: HashMap<VmId, bool>,
}

/// The configuration the decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub grace: chrono::Duration,
    /// Free floating IPs of ours are released (else kept for reuse).
    pub release_floating_ips: bool,
    /// A builder older than this may be left over (`image.build_timeout_minutes`).
    pub build_timeout: chrono::Duration,
}

/// One repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The VM's server answered 404 twice, a grace period apart.
    MarkGone(VmId),
    /// A server of ours no live VM explains, or a second server of a VM
    /// whose recorded server is another (a lost create answer).
    DeleteServer(String),
    DeleteVolume(String),
    ReleaseFloatingIp(String),
    /// An image builder no running build owns any more.
    DeleteBuilder(String),
}

/// Live VMs that a vanished server would leave dangling. Creating and
/// deleting VMs are the driver's, a failed one is torn down by it.
fn watched(vm: &VmRecord) -> Option<&str> {
    let settled = matches!(
        vm.state,
        VmState::Booting | VmState::Building | VmState::Ready
    );
    vm.server_id.as_deref().filter(|_| settled)
}

/// The VMs whose server the lists did not show: ask Nova for each.
pub fn to_look_up(owned: &Owned, records: &[VmRecord]) -> Vec<(VmId, String)> {
    let listed: HashSet<&str> = owned.servers.iter().map(|s| s.id.as_str()).collect();
    records
        .iter()
        .filter_map(|vm| {
            let server = watched(vm)?;
            (!listed.contains(server)).then(|| (vm.id, server.to_owned()))
        })
        .collect()
}

/// The repairs due now, and what to remember for the next pass.
pub fn plan(
    observed: &Observed,
    records: &[VmRecord],
    seen: &Seen,
    now: DateTime<Utc>,
    rules: &Rules,
) -> (Vec<Action>, Seen) {
    let owned = &observed.owned;
    let mut actions = Vec::new();
    let mut next = Seen::default();

    // 1. Servers that answered 404: gone on the second 404, grace apart.
    for vm in records {
        if watched(vm).is_none() || observed.found.get(&vm.id) != Some(&false) {
            continue;
        }
        match seen.missing_since.get(&vm.id) {
            Some(&since) if now - since >= rules.grace => actions.push(Action::MarkGone(vm.id)),
            Some(&since) => {
                next.missing_since.insert(vm.id, since);
            }
            None => {
                next.missing_since.insert(vm.id, now);
            }
        }
    }

    // 2. What no live VM explains.
    let live: HashMap<VmId, &VmRecord> = records.iter().map(|vm| (vm.id, vm)).collect();
    let mut unexplained: Vec<(String, Action)> = Vec::new();
    let mut attached: HashSet<&str> = HashSet::new();
    for server in &owned.servers {
        if explains(&live, server) {
            attached.extend(server.volume_ids.iter().map(String::as_str));
        } else {
            unexplained.push((server.id.clone(), Action::DeleteServer(server.id.clone())));
        }
    }
    let recorded_volumes: HashSet<&str> = records
        .iter()
        .flat_map(|vm| vm.volume_ids.0.iter().map(String::as_str))
        .collect();
    for volume in &owned.volume_ids {
        if !attached.contains(volume.as_str()) && !recorded_volumes.contains(volume.as_str()) {
            unexplained.push((volume.clone(), Action::DeleteVolume(volume.clone())));
        }
    }
    if rules.release_floating_ips {
        let recorded: HashSet<&str> = records
            .iter()
            .filter_map(|vm| vm.floating_ip_id.as_deref())
            .collect();
        for fip in &owned.floating_ips {
            if !recorded.contains(fip.id.as_str()) {
                unexplained.push((fip.id.clone(), Action::ReleaseFloatingIp(fip.id.clone())));
            }
        }
    }
    for (id, action) in unexplained {
        let since = *seen.orphans_since.get(&id).unwrap_or(&now);
        if now - since >= rules.grace {
            actions.push(action);
        } else {
            next.orphans_since.insert(id, since);
        }
    }

    // 3. Builders left over by a build that died or could not clean up.
    for builder in &owned.builders {
        if abandoned(builder, now, rules.build_timeout) {
            actions.push(Action::DeleteBuilder(builder.id.clone()));
        }
    }
    (actions, next)
}

/// Whether a live VM accounts for this server: it is the VM's recorded
/// server, or the VM has none recorded yet and the driver is still looking
/// for it (creating, or deleting what a lost create answer left). A VM
/// that failed without a server id never looks again: one list is no proof
/// of absence, so its stray server must become an orphan.
fn explains(live: &HashMap<VmId, &VmRecord>, server: &Server) -> bool {
    let Some(vm) = server
        .metadata
        .get(META_VM)
        .and_then(|id| id.parse::<VmId>().ok())
        .and_then(|id| live.get(&id))
    else {
        return false;
    };
    match vm.server_id.as_deref() {
        Some(recorded) => recorded == server.id,
        None => matches!(vm.state, VmState::Creating | VmState::Deleting),
    }
}

#[cfg(test)]
mod tests;
