//! Who may start now: `cloud.max_vms` caps the VMs that hold cloud
//! resources, `launch.repo_caps` caps them per repository (workshops).
//! Queued launches are admitted oldest first as room frees.

use super::Settings;
use crate::domain::{RepoSpec, VmId, VmState};
use crate::store::VmRecord;
use std::collections::{HashMap, HashSet};

/// Whether a live VM holds cloud resources: a queued one does not yet, and
/// a failed one whose resources were given back no longer does.
fn holding(vm: &&VmRecord) -> bool {
    vm.state != VmState::Requested && vm.released_at.is_none()
}

/// How many more VMs `cloud.max_vms` lets start now, after those that hold
/// resources and those queued before (`None`: no cap). Whatever their
/// launch profile, each VM takes one.
/// The warm pool's VMs are not counted: they yield their places to users
/// (the pool shrinks when users need them).
pub fn free_slots(vms: &[VmRecord], settings: &Settings) -> Option<u64> {
    settings
        .cloud
        .max_vms
        .map(|max| u64::from(max).saturating_sub(places_taken(vms)))
}

/// How many places of `cloud.max_vms` users' VMs take: those that hold
/// cloud resources and those queued.
pub fn places_taken(vms: &[VmRecord]) -> u64 {
    vms.iter()
        .filter(|vm| vm.state == VmState::Requested || holding(vm))
        .count() as u64
}

/// `launch.repo_caps`' cap of `repo`, if it has one.
pub fn repo_cap(repo: &RepoSpec, settings: &Settings) -> Option<u32> {
    settings
        .launch
        .repo_caps
        .iter()
        .find(|(r, _)| RepoSpec::parse(r).is_ok_and(|r| r == *repo))
        .map(|(_, cap)| *cap)
}

/// Whether another VM of `repo` may start now by its cap (a claim of a
/// pool VM starts one without passing the queue).
pub fn repo_has_room(vms: &[VmRecord], repo: &RepoSpec, settings: &Settings) -> bool {
    repo_cap(repo, settings).is_none_or(|cap| {
        let used = vms
            .iter()
            .filter(holding)
            .filter(|vm| vm.repo == *repo)
            .count();
        used < cap as usize
    })
}

/// The queued launches (state `requested`) that may go ahead now.
/// `vms` must be every live VM, oldest first; `pool_vms` VMs of the warm
/// pool hold cloud resources too (they shrink to make room).
pub fn admit(vms: &[VmRecord], pool_vms: usize, settings: &Settings) -> HashSet<VmId> {
    let mut free = settings
        .cloud
        .max_vms
        .map(|max| i64::from(max) - vms.iter().filter(holding).count() as i64 - pool_vms as i64);
    let caps: HashMap<String, u32> = settings
        .launch
        .repo_caps
        .iter()
        .filter_map(|(repo, cap)| RepoSpec::parse(repo).ok().map(|r| (r.to_string(), *cap)))
        .collect();
    let mut per_repo: HashMap<&str, u32> = HashMap::new();
    for vm in vms.iter().filter(holding) {
        *per_repo.entry(vm.repo.as_str()).or_default() += 1;
    }
    let mut admitted = HashSet::new();
    for vm in vms.iter().filter(|vm| vm.state == VmState::Requested) {
        if free.is_some_and(|f| f <= 0) {
            break;
        }
        let used = per_repo.entry(vm.repo.as_str()).or_default();
        if caps.get(vm.repo.as_str()).is_some_and(|cap| *used >= *cap) {
            continue;
        }
        *used += 1;
        if let Some(f) = free.as_mut() {
            *f -= 1;
        }
        admitted.insert(vm.id);
    }
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn free_slots_count_the_queued_too() {
        let mut config = Config::defaults();
        let vms = [
            VmRecord::example(VmState::Ready),
            VmRecord::example(VmState::Requested),
        ];
        assert_eq!(free_slots(&vms, &crate::app::settings(&config)), None);
        config.cloud.max_vms = Some(3);
        assert_eq!(free_slots(&vms, &crate::app::settings(&config)), Some(1));
        config.cloud.max_vms = Some(1);
        assert_eq!(free_slots(&vms, &crate::app::settings(&config)), Some(0));
    }

    #[test]
    fn a_repository_at_its_cap_has_no_room_for_a_claim() {
        let mut config = Config::defaults();
        let vm = VmRecord::example(VmState::Ready);
        assert!(repo_has_room(
            std::slice::from_ref(&vm),
            &vm.repo,
            &crate::app::settings(&config)
        ));
        config.launch.repo_caps = [(vm.repo.to_string(), 1)].into_iter().collect();
        let settings = crate::app::settings(&config);
        assert!(!repo_has_room(
            std::slice::from_ref(&vm),
            &vm.repo,
            &settings
        ));
        assert!(repo_has_room(&[], &vm.repo, &settings));
    }

    #[test]
    fn pool_vms_hold_places_until_they_are_gone() {
        let mut config = Config::defaults();
        config.cloud.max_vms = Some(3);
        let settings = crate::app::settings(&config);
        let vms = [
            VmRecord::example(VmState::Ready),
            VmRecord::example(VmState::Requested),
        ];
        assert_eq!(admit(&vms, 1, &settings), HashSet::from([vms[1].id]));
        assert!(admit(&vms, 2, &settings).is_empty());
    }

    #[test]
    fn a_failed_vm_whose_resources_were_released_takes_no_room() {
        let mut config = Config::defaults();
        config.cloud.max_vms = Some(1);
        let released = VmRecord {
            released_at: Some(chrono::Utc::now()),
            ..VmRecord::example(VmState::Failed)
        };
        let queued = VmRecord::example(VmState::Requested);
        let settings = crate::app::settings(&config);
        assert_eq!(
            admit(&[released.clone(), queued.clone()], 0, &settings),
            HashSet::from([queued.id])
        );
        // Its repository's cap is not used up by it either.
        config.cloud.max_vms = None;
        config.launch.repo_caps = [(released.repo.to_string(), 1)].into_iter().collect();
        let settings = crate::app::settings(&config);
        assert_eq!(
            admit(&[released, queued.clone()], 0, &settings),
            HashSet::from([queued.id])
        );
    }
}
