//! The warm pool's servers and volumes are ours and explained by their
//! `pool_vms` rows, not by a VM record: they are taken out of what the
//! reconciler's plan looks at. A pool server without a row (a crash, a
//! lost answer) stays in, and is deleted like any orphan of ours.

use crate::cloud::{META_VM, Owned, ServerStatus};
use crate::domain::VmId;
use crate::store::{PoolState, PoolVm};
use std::collections::{HashMap, HashSet};

/// Take out of `owned` the servers and volumes that `pool` explains.
pub fn leave_out_pool(owned: &mut Owned, pool: &[PoolVm]) {
    let rows: HashMap<String, &PoolVm> = pool.iter().map(|vm| (vm.id.to_string(), vm)).collect();
    let mut volumes: HashSet<String> = pool
        .iter()
        .flat_map(|vm| vm.volume_ids.0.iter().cloned())
        .collect();
    owned.servers.retain(|server| {
        let row = server.metadata.get(META_VM).and_then(|id| rows.get(id));
        let explained = row.is_some_and(|vm| {
            vm.server_id
                .as_deref()
                .is_none_or(|recorded| recorded == server.id)
        });
        if explained {
            volumes.extend(server.volume_ids.iter().cloned());
        }
        !explained
    });
    owned.volume_ids.retain(|id| !volumes.contains(id));
}

/// Ready pool VMs whose server the list shows in ERROR (dead: to be
/// replaced), and those it does not show (to be asked for one by one: a
/// list is no proof of absence). Booting ones the pool step watches.
pub fn dead_or_unlisted(owned: &Owned, pool: &[PoolVm]) -> (Vec<VmId>, Vec<(VmId, String)>) {
    let (mut dead, mut unlisted) = (Vec::new(), Vec::new());
    for vm in pool.iter().filter(|vm| vm.state == PoolState::Ready) {
        let Some(server) = vm.server_id.as_deref() else {
            continue;
        };
        match owned.servers.iter().find(|s| s.id == server) {
            Some(s) if s.status == ServerStatus::Error => dead.push(vm.id),
            Some(_) => {}
            None => unlisted.push((vm.id, server.to_owned())),
        }
    }
    (dead, unlisted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Server, ServerStatus};
    use crate::domain::VmId;
    use crate::store::PoolState;
    use chrono::Utc;
    use sqlx::types::Json;
    use std::collections::BTreeMap;

    fn server(id: &str, vm: VmId, volume: &str) -> Server {
        Server {
            id: id.into(),
            name: "binder-pool-x".into(),
            status: ServerStatus::Active,
            fault: None,
            addresses: vec![],
            volume_ids: vec![volume.into()],
            metadata: BTreeMap::from([(META_VM.to_owned(), vm.to_string())]),
            created: Some(Utc::now()),
        }
    }

    fn row(id: VmId, server: Option<&str>) -> PoolVm {
        PoolVm {
            id,
            name: "binder-pool-x".into(),
            state: PoolState::Booting,
            server_id: server.map(str::to_owned),
            address: None,
            volume_ids: Json(vec![]),
            secret_hash: vec![],
            prebuilt: Json(vec![]),
            reason: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            ready_at: None,
        }
    }

    #[test]
    fn ready_pool_vms_in_error_are_dead_and_unlisted_ones_are_looked_up() {
        let (a, b, c) = (VmId::new(), VmId::new(), VmId::new());
        let mut broken = server("s-b", b, "v-b");
        broken.status = ServerStatus::Error;
        let owned = Owned {
            servers: vec![server("s-a", a, "v-a"), broken],
            ..Owned::default()
        };
        let ready = |id, s| PoolVm {
            state: PoolState::Ready,
            ..row(id, Some(s))
        };
        let booting = row(VmId::new(), Some("s-x"));
        let (dead, unlisted) = dead_or_unlisted(
            &owned,
            &[ready(a, "s-a"), ready(b, "s-b"), ready(c, "s-c"), booting],
        );
        assert_eq!(dead, vec![b]);
        assert_eq!(unlisted, vec![(c, "s-c".to_owned())]);
    }

    #[test]
    fn pool_rows_explain_their_servers_and_volumes_and_nothing_else() {
        let (a, b, c, d) = (VmId::new(), VmId::new(), VmId::new(), VmId::new());
        let mut owned = Owned {
            servers: vec![
                server("s-a", a, "v-a"),
                // Still being created: no server id recorded yet.
                server("s-b", b, "v-b"),
                // A second server of row c (a lost answer): an orphan.
                server("s-c2", c, "v-c2"),
                // No row at all: an orphan.
                server("s-d", d, "v-d"),
            ],
            volume_ids: ["v-a", "v-b", "v-c", "v-c2", "v-d", "v-x"]
                .map(String::from)
                .to_vec(),
            ..Owned::default()
        };
        let mut c_row = row(c, Some("s-c"));
        c_row.volume_ids = Json(vec!["v-c".into()]);
        leave_out_pool(&mut owned, &[row(a, Some("s-a")), row(b, None), c_row]);
        let servers: Vec<&str> = owned.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(servers, ["s-c2", "s-d"]);
        assert_eq!(owned.volume_ids, ["v-c2", "v-d", "v-x"]);
    }
}
