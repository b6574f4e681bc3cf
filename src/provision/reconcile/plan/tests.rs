//! The reconciler's plan, case by case.

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
