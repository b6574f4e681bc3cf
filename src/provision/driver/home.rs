//! A user's home volume at launch: made at their first launch (or, after a
//! crash between the cloud's yes and our record, adopted by its metadata,
//! never made twice), waited for while it is still busy with their
//! previous VM, then attached at boot. Deleting a VM never deletes it.

use super::StepError;
use crate::cloud::{
    CloudError, META_HOME, META_INSTANCE, META_LOGIN, META_OWNER, Volume, VolumeSpec, VolumeStatus,
};
use crate::provision::Provisioner;
use crate::store::{EventKind, HomeVolume, VmRecord};
use std::collections::BTreeMap;

/// What a launch does about its owner's home volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HomeVolumeUse {
    /// Home volumes are off (`storage.home_volume_gb = 0`).
    Off,
    /// Boot with this volume attached.
    Attach(String),
    /// Not yet; why, for the VM's events. The wait is bounded by the
    /// creating phase's timeout.
    Wait(String),
    /// Never as it is; why, for the user.
    Refuse(String),
}

/// Whether `volume` can be attached to a new server in `zone` now.
pub(super) fn usable(volume: &Volume, zone: Option<&str>) -> HomeVolumeUse {
    if let (Some(want), Some(have)) = (zone, volume.availability_zone.as_deref())
        && want != have
    {
        return HomeVolumeUse::Refuse(format!(
            "your storage (volume {}) is in availability zone {have:?}, but VMs start in \
             {want:?} (cloud.availability_zone): ask the course staff to move it or delete it",
            volume.id
        ));
    }
    match &volume.status {
        VolumeStatus::Available => HomeVolumeUse::Attach(volume.id.clone()),
        VolumeStatus::Creating => {
            HomeVolumeUse::Wait("your storage is being created; waiting until it is ready".into())
        }
        VolumeStatus::InUse | VolumeStatus::Detaching => HomeVolumeUse::Wait(format!(
            "your storage is still attached to your previous VM ({}); waiting until it is free",
            if volume.status == VolumeStatus::Detaching {
                "detaching"
            } else {
                "in use"
            }
        )),
        VolumeStatus::Busy(status) => HomeVolumeUse::Wait(format!(
            "your storage is {status}; waiting until it is available"
        )),
        VolumeStatus::Broken(status) => HomeVolumeUse::Refuse(format!(
            "your storage (volume {}) is in state {status:?} and cannot be attached: ask the course staff",
            volume.id
        )),
    }
}

impl Provisioner {
    /// The home volume `vm` boots with, made or adopted on the owner's
    /// first launch.
    #[tracing::instrument(skip_all)]
    pub(super) async fn home_volume_for(&self, vm: &VmRecord) -> Result<HomeVolumeUse, StepError> {
        let zone = self.inner.settings.cloud.availability_zone.as_deref();
        Ok(match self.owners_home_volume(vm).await? {
            Ok(volume) => usable(&volume, zone),
            Err(other) => other,
        })
    }

    /// The owner's home volume as the cloud has it now, made or adopted on
    /// their first launch; `Err`: none to use (yet), and what to do.
    pub(super) async fn owners_home_volume(
        &self,
        vm: &VmRecord,
    ) -> Result<Result<Volume, HomeVolumeUse>, StepError> {
        let Some(size_gb) = self.inner.settings.storage.home_volume_gb() else {
            return Ok(Err(HomeVolumeUse::Off));
        };
        let store = &self.inner.driver_store;
        let record = match store.home_volume(vm.owner_id).await? {
            Some(record) => record,
            None => match self.make_home_volume(vm, size_gb).await? {
                Ok(record) => record,
                Err(refused) => return Ok(Err(refused)),
            },
        };
        match self.inner.cloud.get_volume(&record.volume_id).await? {
            Some(volume) => Ok(Ok(volume)),
            None => {
                // Deleted outside stackbinder: what it held is gone, and
                // the next step makes a new, empty one rather than leaving
                // the user unable to launch.
                store.forget_home_volume(vm.owner_id).await?;
                store
                    .append_event(
                        vm.id,
                        EventKind::Warning,
                        &format!(
                            "your storage (volume {}) no longer exists in the cloud; a new, empty one is made",
                            record.volume_id
                        ),
                    )
                    .await?;
                Ok(Err(HomeVolumeUse::Wait("making your new storage".into())))
            }
        }
    }

    /// Adopt the volume an earlier step made and did not record (found by
    /// its metadata), else make one; record it either way. `Err` is the
    /// refusal to show the user.
    async fn make_home_volume(
        &self,
        vm: &VmRecord,
        size_gb: u32,
    ) -> Result<Result<HomeVolume, HomeVolumeUse>, StepError> {
        let cloud = &self.inner.cloud;
        let store = &self.inner.driver_store;
        let owner = vm.owner_id.to_string();
        let (id, size_gb, zone, event) = match cloud
            .find_home_volume(&self.inner.installation, &owner)
            .await?
        {
            Some(found) => (
                found.id,
                found.size_gb,
                found.availability_zone,
                "found the storage an earlier attempt created".to_owned(),
            ),
            None => {
                let spec = self.home_volume_spec(vm, size_gb);
                store.check_lease().await?;
                match cloud.create_volume(&spec).await {
                    Ok(id) => (
                        id,
                        size_gb,
                        spec.availability_zone,
                        format!("created your storage: {size_gb} GB, kept across your VMs"),
                    ),
                    Err(e @ CloudError::QuotaExceeded(_)) => {
                        return Ok(Err(HomeVolumeUse::Refuse(format!(
                            "there is no room for your storage: {e}"
                        ))));
                    }
                    Err(e) if !e.is_transient() => {
                        return Ok(Err(HomeVolumeUse::Refuse(format!(
                            "the cloud refused to create your storage: {e}"
                        ))));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let record = store
            .record_home_volume(vm.owner_id, &id, size_gb, zone.as_deref())
            .await?;
        store.append_event(vm.id, EventKind::State, &event).await?;
        Ok(Ok(record))
    }

    fn home_volume_spec(&self, vm: &VmRecord, size_gb: u32) -> VolumeSpec {
        let s = &self.inner.settings;
        VolumeSpec {
            name: format!("{}home-{}", s.cloud.name_prefix, vm.owner_login),
            size_gb,
            volume_type: s.storage.volume_type.clone(),
            availability_zone: s.cloud.availability_zone.clone(),
            metadata: BTreeMap::from([
                (META_HOME.to_owned(), vm.owner_id.to_string()),
                (META_OWNER.to_owned(), vm.owner_id.to_string()),
                (META_LOGIN.to_owned(), vm.owner_login.to_string()),
                (
                    META_INSTANCE.to_owned(),
                    self.inner.installation.as_str().to_owned(),
                ),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(status: VolumeStatus, zone: &str) -> Volume {
        Volume {
            id: "v1".into(),
            status,
            size_gb: 10,
            availability_zone: Some(zone.into()),
            attached_to: vec![],
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn an_available_volume_is_attached_a_busy_one_waited_for() {
        let use_of = |status| usable(&volume(status, "nova"), Some("nova"));
        assert_eq!(
            use_of(VolumeStatus::Available),
            HomeVolumeUse::Attach("v1".into())
        );
        for busy in [
            VolumeStatus::Creating,
            VolumeStatus::InUse,
            VolumeStatus::Detaching,
            VolumeStatus::Busy("extending".into()),
        ] {
            assert!(
                matches!(use_of(busy.clone()), HomeVolumeUse::Wait(_)),
                "{busy:?}"
            );
        }
        let HomeVolumeUse::Wait(why) = use_of(VolumeStatus::Detaching) else {
            unreachable!()
        };
        assert!(why.contains("detaching"), "{why}");
        assert!(matches!(
            use_of(VolumeStatus::Broken("error".into())),
            HomeVolumeUse::Refuse(_)
        ));
    }

    #[test]
    fn a_volume_in_another_zone_is_refused_with_both_zones_named() {
        let HomeVolumeUse::Refuse(why) =
            usable(&volume(VolumeStatus::Available, "az2"), Some("az1"))
        else {
            panic!("attached across zones")
        };
        assert!(why.contains("\"az2\"") && why.contains("\"az1\""), "{why}");
        // Without a configured zone, Nova places the server by the volume.
        assert_eq!(
            usable(&volume(VolumeStatus::Available, "az2"), None),
            HomeVolumeUse::Attach("v1".into())
        );
    }
}
