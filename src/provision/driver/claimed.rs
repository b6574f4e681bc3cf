//! A VM claimed from the warm pool: its server was booted without an
//! owner, so after the claim it is renamed and marked as its owner's, gets
//! its floating IP (in `floating_ip` mode; none behind the proxy) and its
//! owner's home volume, attached now (it could not be at boot; on a
//! user's first launch it is made here first). With home volumes on the VM
//! gets its job only once the volume is attached: the job names it, and
//! the VM looks for its disk as soon as it has the job. A claimed
//! VM that does not ask for its assignment within `claim_timeout_seconds`
//! of getting it is given up: its server is deleted and the launch boots a
//! VM of its own.

use super::StepError;
use super::home::{HomeVolumeUse, usable};
use crate::cloud::{ServerStatus, Volume, VolumeStatus};
use crate::provision::Provisioner;
use crate::store::{EventKind, VmRecord};
use chrono::{DateTime, Utc};

/// What a claimed VM's step does about its owner's home volume.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClaimedHome {
    /// Nothing (more): attached and in use, or home volumes off; the id
    /// the job carries.
    Attached(Option<String>),
    /// Ask Nova to attach this volume to the claimed server.
    Attach(String),
    /// Look again at the next step; why, when the user is to be told.
    Wait(Option<String>),
    /// Never as it is: fail the launch, saying why.
    Refuse(String),
}

/// Whether `vm` has had its assignment for more than `limit_seconds` at
/// `now` without reporting.
fn silent_since_assigned(vm: &VmRecord, limit_seconds: u64, now: DateTime<Utc>) -> bool {
    vm.progress.is_none()
        && vm.assigned_at.is_some_and(|at| {
            (now - at).num_milliseconds() > (limit_seconds as i64).saturating_mul(1000)
        })
}

/// What to do about the owner's home volume, as `found` (the volume, or
/// why there is none to use) on the claimed `server` in `zone`.
fn plan_home(
    found: &Result<Volume, HomeVolumeUse>,
    server: &str,
    zone: Option<&str>,
) -> ClaimedHome {
    let volume = match found {
        Ok(volume) => volume,
        Err(HomeVolumeUse::Off) => return ClaimedHome::Attached(None),
        Err(HomeVolumeUse::Attach(id)) => return ClaimedHome::Attach(id.clone()),
        Err(HomeVolumeUse::Wait(why)) => return ClaimedHome::Wait(Some(why.clone())),
        Err(HomeVolumeUse::Refuse(why)) => return ClaimedHome::Refuse(why.clone()),
    };
    if volume.attached_to.iter().any(|s| s == server) {
        return match volume.status {
            VolumeStatus::InUse => ClaimedHome::Attached(Some(volume.id.clone())),
            _ => ClaimedHome::Wait(None),
        };
    }
    match usable(volume, zone) {
        HomeVolumeUse::Attach(id) => ClaimedHome::Attach(id),
        // Ours attaching (Cinder lists the attachment once done), or
        // the previous VM's still detaching.
        HomeVolumeUse::Wait(_) if volume.status == VolumeStatus::InUse => ClaimedHome::Wait(None),
        HomeVolumeUse::Wait(why) => ClaimedHome::Wait(Some(why)),
        HomeVolumeUse::Refuse(why) => ClaimedHome::Refuse(why),
        HomeVolumeUse::Off => ClaimedHome::Attached(None),
    }
}

impl Provisioner {
    /// Whether a claimed VM has gone `claim_timeout_seconds` since it got
    /// its assignment without a word (it reports its first phase once it
    /// has it). A VM still without one (its home volume being made) has
    /// not started to count.
    pub(super) fn claim_timed_out(&self, vm: &VmRecord) -> bool {
        let limit = self.inner.settings.pool.claim_timeout_seconds;
        silent_since_assigned(vm, limit, Utc::now())
    }

    /// Rename and mark the server, attach the floating IP and the home
    /// volume; each step does what it can and the next goes on.
    #[tracing::instrument(skip_all)]
    pub(super) async fn settle_claim(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        let server = vm.server_id.as_deref().expect("a claimed VM has a server");
        // Claimed before the pool step saw its address or boot volume (the
        // VM asked for its job first): record them now.
        if vm.address.is_none() || vm.volume_ids.0.is_empty() {
            let Some(found) = cloud.get_server(server).await? else {
                self.fail(
                    vm,
                    "failed while building: the server disappeared from the cloud",
                )
                .await;
                return Ok(());
            };
            if vm.address.is_none()
                && let Some(address) = found.addresses.first()
            {
                store.set_address(vm.id, address).await?;
            }
            self.record_boot_volume(vm, &found).await?;
        }
        cloud
            .update_server(server, &vm.name, &self.owner_metadata(vm))
            .await?;
        self.attach_floating_ip(vm).await?;
        let Some(home_volume) = self.attach_home_volume(vm, server).await? else {
            return Ok(());
        };
        if vm.assigned_at.is_none() {
            let assignment = match self.assignment_for(vm, home_volume) {
                Ok(assignment) => assignment,
                Err(why) => {
                    self.fail(vm, &why).await;
                    return Ok(());
                }
            };
            // The claim rotated the secret: the job delivers the new one.
            store.assign_vm(vm.id, &assignment, None).await?;
            self.assignment_ready(vm.id);
        }
        store.set_claim_settled(vm.id).await?;
        store
            .append_event(
                vm.id,
                EventKind::State,
                &format!("the pool VM is now {} and yours", vm.name),
            )
            .await?;
        Ok(())
    }

    /// Make (on a first launch) and attach the owner's home volume to the
    /// claimed server: `None` until it is attached (`in-use`, with the
    /// server among its attachments), then the id the job carries
    /// (`Some(None)`: home volumes off).
    async fn attach_home_volume(
        &self,
        vm: &VmRecord,
        server: &str,
    ) -> Result<Option<Option<String>>, StepError> {
        let found = self.owners_home_volume(vm).await?;
        let zone = self.inner.settings.cloud.availability_zone.as_deref();
        match plan_home(&found, server, zone) {
            ClaimedHome::Attached(id) => Ok(Some(id)),
            ClaimedHome::Attach(id) => {
                let store = &self.inner.driver_store;
                store.check_lease().await?;
                self.inner.cloud.attach_volume(server, &id).await?;
                store.home_volume_attached(vm.owner_id, Utc::now()).await?;
                Ok(None)
            }
            // A job that waits for it says so, and the wait is bounded
            // (`note_error`).
            ClaimedHome::Wait(None) if vm.assigned_at.is_none() => Err(StepError::Waiting(
                "attaching your storage to your VM".into(),
            )),
            ClaimedHome::Wait(None) => Ok(None),
            ClaimedHome::Wait(Some(why)) => Err(StepError::Waiting(why)),
            ClaimedHome::Refuse(why) => {
                self.fail(vm, &why).await;
                Ok(None)
            }
        }
    }

    /// Delete the server of a claim that never answered, as a pool
    /// leftover, and once it is gone send the launch back to a cold boot.
    /// Only then: the cold boot looks for a server by the VM's id first,
    /// and must not find this one.
    #[tracing::instrument(skip_all)]
    pub(super) async fn give_up_claim(&self, vm: &VmRecord) -> Result<(), StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        if let Some(server) = &vm.server_id
            && let Some(found) = cloud.get_server(server).await?
        {
            if found.status != ServerStatus::Deleting {
                store.check_lease().await?;
                cloud.delete_server(server).await?;
            }
            return Ok(());
        }
        if let Some(fip) = &vm.floating_ip_id
            && self.inner.settings.cloud.release_floating_ip
        {
            store.check_lease().await?;
            cloud.release_floating_ip(fip).await?;
        }
        for volume in &vm.volume_ids.0 {
            store.check_lease().await?;
            cloud.delete_volume(volume).await?;
        }
        let secs = self.inner.settings.pool.claim_timeout_seconds;
        if store
            .unclaim(
                vm.id,
                &format!(
                    "the pool VM did not ask for its job within {secs} s; it is deleted and a new VM boots for you"
                ),
            )
            .await?
        {
            tracing::warn!(vm = %vm.id, "claimed pool VM never answered: booting cold");
            self.wake();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn volume(status: VolumeStatus, attached_to: &[&str]) -> Volume {
        Volume {
            id: "home".into(),
            status,
            size_gb: 10,
            availability_zone: Some("nova".into()),
            attached_to: attached_to.iter().map(|s| (*s).to_owned()).collect(),
            metadata: BTreeMap::new(),
        }
    }

    fn plan(status: VolumeStatus, attached_to: &[&str]) -> ClaimedHome {
        plan_home(&Ok(volume(status, attached_to)), "s1", Some("nova"))
    }

    #[test]
    fn the_job_waits_until_the_volume_is_in_use_on_the_claimed_server() {
        assert_eq!(
            plan(VolumeStatus::Available, &[]),
            ClaimedHome::Attach("home".into())
        );
        // Attaching: Cinder says in-use before it lists the attachment.
        assert_eq!(plan(VolumeStatus::InUse, &[]), ClaimedHome::Wait(None));
        assert_eq!(
            plan(VolumeStatus::Busy("maintenance".into()), &["s1"]),
            ClaimedHome::Wait(None)
        );
        assert_eq!(
            plan(VolumeStatus::InUse, &["s1"]),
            ClaimedHome::Attached(Some("home".into()))
        );
    }

    #[test]
    fn a_volume_being_made_or_freed_is_waited_for_a_broken_one_refused() {
        assert!(matches!(
            plan(VolumeStatus::Creating, &[]),
            ClaimedHome::Wait(Some(why)) if why.contains("being created")
        ));
        assert!(matches!(
            plan(VolumeStatus::Detaching, &["previous"]),
            ClaimedHome::Wait(Some(why)) if why.contains("detaching")
        ));
        assert!(matches!(
            plan(VolumeStatus::Broken("error".into()), &[]),
            ClaimedHome::Refuse(_)
        ));
    }

    #[test]
    fn the_claim_timeout_counts_from_the_assignment_not_the_claim() {
        let now = Utc::now();
        let mut vm = VmRecord::example(crate::domain::VmState::Building);
        vm.phase_started_at = now - chrono::Duration::minutes(10);
        assert!(!silent_since_assigned(&vm, 60, now), "no job yet");
        vm.assigned_at = Some(now - chrono::Duration::seconds(30));
        assert!(!silent_since_assigned(&vm, 60, now));
        vm.assigned_at = Some(now - chrono::Duration::seconds(61));
        assert!(silent_since_assigned(&vm, 60, now));
        vm.progress = Some(crate::domain::Progress::Cloning);
        assert!(!silent_since_assigned(&vm, 60, now), "it reported");
    }

    #[test]
    fn without_a_volume_to_look_at_the_lookup_says_what_to_do() {
        let plan = |found| plan_home(&Err(found), "s1", None);
        assert_eq!(plan(HomeVolumeUse::Off), ClaimedHome::Attached(None));
        assert_eq!(
            plan(HomeVolumeUse::Wait("making".into())),
            ClaimedHome::Wait(Some("making".into()))
        );
        assert_eq!(
            plan(HomeVolumeUse::Refuse("no room".into())),
            ClaimedHome::Refuse("no room".into())
        );
    }
}
