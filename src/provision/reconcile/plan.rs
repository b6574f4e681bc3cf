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
mod tests {
    use super::*;
    use crate::cloud::{FloatingIp, ServerStatus};
    use std::collections::BTreeMap;

    fn record(state: VmState, server: Option<&str>) -> VmRecord {
        VmRecord {
            server_id: server.map(str::to_owned),
            ..VmRecord::example(state)
        }
    }

    fn server(id: &str, vm: Option<VmId>) -> Server {
        Server {
            id: id.into(),
            name: "binder-ada".into(),
            status: ServerStatus::Active,
            fault: None,
            addresses: vec![],
            volume_ids: vec![],
            metadata: vm
                .map(|vm| BTreeMap::from([(META_VM.to_owned(), vm.to_string())]))
                .unwrap_or_default(),
            created: Some(Utc::now()),
        }
    }

    fn rules(grace_minutes: i64) -> Rules {
        Rules {
            grace: chrono::Duration::minutes(grace_minutes),
            release_floating_ips: true,
            build_timeout: chrono::Duration::minutes(90),
        }
    }

    fn minutes(m: i64) -> chrono::Duration {
        chrono::Duration::minutes(m)
    }

    #[test]
    fn reconciler_keeps_a_vm_whose_server_one_listing_missed() {
        let vm = record(VmState::Ready, Some("s1"));
        let owned = Owned::default();
        assert_eq!(
            to_look_up(&owned, std::slice::from_ref(&vm)),
            [(vm.id, "s1".to_owned())]
        );
        // Nova shows it when asked directly: never gone, however often.
        let observed = Observed {
            owned,
            found: HashMap::from([(vm.id, true)]),
        };
        let mut seen = Seen::default();
        let t0 = Utc::now();
        for pass in 0..5 {
            let (actions, next) = plan(
                &observed,
                std::slice::from_ref(&vm),
                &seen,
                t0 + minutes(30 * pass),
                &rules(15),
            );
            assert!(actions.is_empty(), "{actions:?}");
            seen = next;
        }
    }

    #[test]
    fn reconciler_marks_a_server_gone_only_after_two_404s_a_grace_apart() {
        let vm = record(VmState::Ready, Some("s1"));
        let gone = Observed {
            owned: Owned::default(),
            found: HashMap::from([(vm.id, false)]),
        };
        let records = std::slice::from_ref(&vm);
        let t0 = Utc::now();
        // Old VM, first 404: nothing yet, whatever the VM's age.
        let (actions, seen) = plan(&gone, records, &Seen::default(), t0, &rules(15));
        assert!(actions.is_empty());
        // A second 404 within the grace: still nothing.
        let (actions, seen) = plan(&gone, records, &seen, t0 + minutes(10), &rules(15));
        assert!(actions.is_empty());
        // The server answers in between: the clock starts again.
        let back = Observed {
            owned: Owned::default(),
            found: HashMap::from([(vm.id, true)]),
        };
        let (_, reset) = plan(&back, records, &seen, t0 + minutes(12), &rules(15));
        let (actions, seen2) = plan(&gone, records, &reset, t0 + minutes(20), &rules(15));
        assert!(actions.is_empty(), "the first 404 after it came back");
        let (actions, _) = plan(&gone, records, &seen2, t0 + minutes(35), &rules(15));
        assert_eq!(actions, [Action::MarkGone(vm.id)]);
        // Without the return: gone at the second 404 a grace after the first.
        let (actions, _) = plan(&gone, records, &seen, t0 + minutes(15), &rules(15));
        assert_eq!(actions, [Action::MarkGone(vm.id)]);
        // Even with no grace at all, one pass is never enough.
        let (actions, _) = plan(&gone, records, &Seen::default(), t0, &rules(0));
        assert!(actions.is_empty());
    }

    /// The actions of a first pass, and of one a 15-minute grace later.
    fn at_once_and_after_the_grace(
        observed: &Observed,
        records: &[VmRecord],
    ) -> (Vec<Action>, Vec<Action>) {
        let t0 = Utc::now();
        let (first, seen) = plan(observed, records, &Seen::default(), t0, &rules(15));
        let (later, _) = plan(observed, records, &seen, t0 + minutes(15), &rules(15));
        (first, later)
    }

    #[test]
    fn a_home_volume_is_never_an_orphan_attached_or_not() {
        let owned = Owned {
            volume_ids: vec!["boot-left".into()],
            home_volume_ids: vec!["home-ada".into()],
            ..Owned::default()
        };
        let observed = Observed {
            owned,
            found: HashMap::new(),
        };
        assert_eq!(
            at_once_and_after_the_grace(&observed, &[]),
            (vec![], vec![Action::DeleteVolume("boot-left".into())]),
            "only the boot volume no VM explains goes"
        );
    }

    #[test]
    fn reconciler_deletes_a_second_server_of_a_vm_that_recorded_another() {
        let vm = record(VmState::Booting, Some("s2"));
        let owned = Owned {
            servers: vec![server("s1", Some(vm.id)), server("s2", Some(vm.id))],
            ..Owned::default()
        };
        let observed = Observed {
            owned,
            found: HashMap::new(),
        };
        let records = std::slice::from_ref(&vm);
        assert_eq!(
            at_once_and_after_the_grace(&observed, records),
            (vec![], vec![Action::DeleteServer("s1".into())])
        );
        // A VM still adopting its server (none recorded) explains it.
        let adopting = record(VmState::Creating, None);
        let observed = Observed {
            owned: Owned {
                servers: vec![server("s3", Some(adopting.id))],
                ..Owned::default()
            },
            found: HashMap::new(),
        };
        let (actions, _) = plan(
            &observed,
            &[adopting],
            &Seen::default(),
            Utc::now(),
            &rules(0),
        );
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn orphans_go_after_the_grace_and_recorded_resources_stay() {
        let mut vm = record(VmState::Ready, Some("s1"));
        vm.volume_ids = sqlx::types::Json(vec!["v1".into()]);
        vm.floating_ip_id = Some("f1".into());
        let fip = |id: &str| FloatingIp {
            id: id.into(),
            address: "192.0.2.1".into(),
        };
        let observed = Observed {
            owned: Owned {
                servers: vec![server("s1", Some(vm.id)), server("s9", Some(VmId::new()))],
                builders: vec![],
                volume_ids: vec!["v1".into(), "v9".into()],
                home_volume_ids: vec![],
                floating_ips: vec![fip("f1"), fip("f9")],
            },
            found: HashMap::new(),
        };
        let t0 = Utc::now();
        let records = std::slice::from_ref(&vm);
        let (actions, seen) = plan(&observed, records, &Seen::default(), t0, &rules(15));
        assert!(actions.is_empty());
        let (actions, _) = plan(&observed, records, &seen, t0 + minutes(15), &rules(15));
        assert_eq!(
            actions,
            [
                Action::DeleteServer("s9".into()),
                Action::DeleteVolume("v9".into()),
                Action::ReleaseFloatingIp("f9".into()),
            ]
        );
        let keep = Rules {
            release_floating_ips: false,
            ..rules(0)
        };
        let (actions, _) = plan(&observed, records, &Seen::default(), t0, &keep);
        assert!(!actions.contains(&Action::ReleaseFloatingIp("f9".into())));
    }

    #[test]
    fn plan_deletes_what_no_live_vm_explains_and_only_after_the_grace() {
        let ready = record(VmState::Ready, Some("s1"));
        let failed = record(VmState::Failed, None);
        let creating = record(VmState::Creating, None);
        let mut holder = record(VmState::Ready, Some("s2"));
        holder.volume_ids = sqlx::types::Json(vec!["v1".into()]);
        holder.floating_ip_id = Some("f1".into());
        let fip = |id: &str| FloatingIp {
            id: id.into(),
            address: "192.0.2.1".into(),
        };
        let servers = |list: Vec<Server>| Owned {
            servers: list,
            ..Owned::default()
        };
        let delete = |id: &str| vec![Action::DeleteServer(id.into())];
        // (what, records, what the cloud has, the actions after the grace)
        let cases: Vec<(&str, Vec<VmRecord>, Owned, Vec<Action>)> = vec![
            (
                "a ready VM's own server",
                vec![ready.clone()],
                servers(vec![server("s1", Some(ready.id))]),
                vec![],
            ),
            (
                "the stray server of a failed VM that recorded none (it never looks again)",
                vec![failed.clone()],
                servers(vec![server("s9", Some(failed.id))]),
                delete("s9"),
            ),
            (
                "a second server of a VM that recorded another",
                vec![ready.clone()],
                servers(vec![
                    server("s1", Some(ready.id)),
                    server("s9", Some(ready.id)),
                ]),
                delete("s9"),
            ),
            (
                "the server a creating VM is still adopting",
                vec![creating.clone()],
                servers(vec![server("s9", Some(creating.id))]),
                vec![],
            ),
            (
                "a server of a VM that is not live",
                vec![],
                servers(vec![server("s9", Some(VmId::new()))]),
                delete("s9"),
            ),
            (
                "a volume and a floating IP a VM recorded, and ones no VM did",
                vec![holder.clone()],
                Owned {
                    servers: vec![server("s2", Some(holder.id))],
                    builders: vec![],
                    volume_ids: vec!["v1".into(), "v9".into()],
                    home_volume_ids: vec![],
                    floating_ips: vec![fip("f1"), fip("f9")],
                },
                vec![
                    Action::DeleteVolume("v9".into()),
                    Action::ReleaseFloatingIp("f9".into()),
                ],
            ),
        ];
        for (what, records, owned, after_the_grace) in cases {
            let observed = Observed {
                owned,
                found: HashMap::new(),
            };
            let (at_once, later) = at_once_and_after_the_grace(&observed, &records);
            assert_eq!(at_once, vec![], "{what}: nothing on the first sight");
            assert_eq!(later, after_the_grace, "{what}");
        }
    }
}
