//! The pool's decision, pure: the target size, the pool VMs, how many VMs
//! users hold or wait for and `cloud.max_vms` in; what to boot, recycle
//! and shrink out.

use crate::domain::VmId;
use crate::store::{PoolState, PoolVm};
use chrono::{DateTime, Utc};

/// What the pool's decision depends on besides its VMs.
#[derive(Debug, Clone, Copy)]
pub struct Inputs {
    /// The size the configuration asks for now (`[pool] size`, schedule).
    pub target: u32,
    /// User VMs that hold cloud resources or wait in the queue for room.
    pub user_vms: u64,
    pub max_vms: Option<u32>,
    pub max_idle: chrono::Duration,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// New pool VMs to boot.
    pub boot: u32,
    /// Unclaimed for longer than `max_idle`: replaced by fresh ones.
    pub recycle: Vec<VmId>,
    /// More than the pool may hold now: deleted, not replaced.
    pub shrink: Vec<VmId>,
}

/// The pool's next moves. Pool VMs take places of `cloud.max_vms` like any
/// VM, but users come first: the pool holds at most what `max_vms` leaves
/// after the users' VMs (queued ones included), so a queued launch makes
/// the pool shrink instead of waiting behind it. Pool VMs being deleted
/// still hold their place until they are gone.
pub fn plan(vms: &[PoolVm], inputs: &Inputs) -> Plan {
    let mut plan = Plan::default();
    let deleting = vms
        .iter()
        .filter(|vm| vm.state == PoolState::Deleting)
        .count() as u64;
    let mut keep: Vec<&PoolVm> = Vec::new();
    for vm in vms.iter().filter(|vm| vm.state != PoolState::Deleting) {
        if inputs.now - vm.created_at >= inputs.max_idle {
            plan.recycle.push(vm.id);
        } else {
            keep.push(vm);
        }
    }
    // The places the pool may take, its VMs being deleted included.
    let room = inputs.max_vms.map_or(u64::MAX, |max| {
        u64::from(max).saturating_sub(inputs.user_vms)
    });
    let kept = keep.len() as u64;
    let cap = u64::from(inputs.target).min(room);
    if kept > cap {
        // The least advanced go first (their boot is cheapest to lose),
        // the youngest of a state first.
        keep.sort_by(|a, b| a.state.cmp(&b.state).then(b.created_at.cmp(&a.created_at)));
        let extra = (kept - cap) as usize;
        plan.shrink = keep.iter().take(extra).map(|vm| vm.id).collect();
    } else {
        // New ones only in places that are free now: those still being
        // deleted (and those recycled now) hold theirs until they are gone.
        let leaving = deleting + plan.recycle.len() as u64;
        let free = room.saturating_sub(kept + leaving);
        plan.boot = u32::try_from((cap - kept).min(free)).unwrap_or(u32::MAX);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::types::Json;

    fn vm(state: PoolState, age_hours: i64, now: DateTime<Utc>) -> PoolVm {
        PoolVm {
            id: VmId::new(),
            name: "binder-pool-x".into(),
            state,
            server_id: None,
            address: None,
            volume_ids: Json(vec![]),
            secret_hash: vec![],
            prebuilt: Json(vec![]),
            reason: None,
            created_at: now - chrono::Duration::hours(age_hours),
            updated_at: now,
            ready_at: None,
        }
    }

    fn inputs(target: u32, user_vms: u64, max_vms: Option<u32>, now: DateTime<Utc>) -> Inputs {
        Inputs {
            target,
            user_vms,
            max_vms,
            max_idle: chrono::Duration::hours(24),
            now,
        }
    }

    #[test]
    fn the_pool_fills_to_its_target_within_max_vms() {
        let now = Utc::now();
        let ready = vm(PoolState::Ready, 1, now);
        let booting = vm(PoolState::Booting, 0, now);
        let pool = [ready.clone(), booting.clone()];
        // (target, user VMs, max_vms) -> VMs to boot
        for (target, users, max, boot) in [
            (3, 0, None, 1),
            (5, 0, None, 3),
            (2, 0, None, 0),
            (5, 0, Some(10), 3),
            (5, 6, Some(10), 2),
            (5, 8, Some(10), 0),
        ] {
            let p = plan(&pool, &inputs(target, users, max, now));
            assert_eq!(p.boot, boot, "target {target}, users {users}, max {max:?}");
            assert!(p.recycle.is_empty());
            assert!(p.shrink.is_empty(), "{target} {users} {max:?}");
        }
    }

    #[test]
    fn users_come_first_and_not_ready_vms_are_shrunk_first() {
        let now = Utc::now();
        let ready = vm(PoolState::Ready, 3, now);
        let older_booting = vm(PoolState::Booting, 2, now);
        let booting = vm(PoolState::Booting, 1, now);
        let creating = vm(PoolState::Creating, 0, now);
        let pool = [
            ready.clone(),
            older_booting.clone(),
            booting.clone(),
            creating.clone(),
        ];
        // Nine users of ten places leave room for one pool VM.
        let p = plan(&pool, &inputs(4, 9, Some(10), now));
        assert_eq!(p.shrink, vec![creating.id, booting.id, older_booting.id]);
        assert_eq!(p.boot, 0);
        // The schedule's end: a target of 1 keeps the ready one.
        let p = plan(&pool, &inputs(1, 0, None, now));
        assert_eq!(p.shrink.len(), 3);
        assert!(!p.shrink.contains(&ready.id));
        // Off: everything goes.
        assert_eq!(plan(&pool, &inputs(0, 0, None, now)).shrink.len(), 4);
        // Full of users: nothing boots, everything goes.
        let p = plan(&pool, &inputs(4, 12, Some(10), now));
        assert_eq!((p.boot, p.shrink.len()), (0, 4));
    }

    #[test]
    fn unclaimed_vms_past_max_idle_are_recycled_and_replaced() {
        let now = Utc::now();
        let stale = vm(PoolState::Ready, 24, now);
        let fresh = vm(PoolState::Ready, 23, now);
        let going = vm(PoolState::Deleting, 30, now);
        let pool = [stale.clone(), fresh.clone(), going.clone()];
        let p = plan(&pool, &inputs(2, 0, None, now));
        assert_eq!(p.recycle, vec![stale.id]);
        assert_eq!((p.boot, p.shrink.len()), (1, 0));
        // What is being deleted still takes its place of max_vms.
        let p = plan(&pool, &inputs(2, 0, Some(3), now));
        assert_eq!((p.boot, p.recycle.len()), (0, 1));
        // ... but is not counted twice: no more shrinks for it.
        let pool = [fresh.clone(), going.clone()];
        let p = plan(&pool, &inputs(3, 2, Some(3), now));
        assert_eq!((p.boot, p.shrink.len()), (0, 0));
    }
}
