//! What a VM is made of (its launch profile, else `[cloud]`), and how many
//! more of a profile's size fit right now, for the launch page.

use super::{ProvisionError, Provisioner, capacity};
use crate::cloud::Shape;
use crate::config::{CloudConfig, Profile};
use crate::domain::{GithubId, ProfileName};

/// A VM of `profile`, or of `[cloud]` without one: the profile's flavor and
/// volume size, and its image if it names one.
pub fn shape(cloud: &CloudConfig, profile: Option<&Profile>) -> Shape {
    match profile {
        None => Shape {
            image: cloud.image.clone(),
            flavor: cloud.flavor.clone(),
            volume_size_gb: cloud.volume_size_gb.get(),
        },
        Some(p) => Shape {
            image: p.image.clone().unwrap_or_else(|| cloud.image.clone()),
            flavor: p.flavor.clone(),
            volume_size_gb: p.volume_size_gb.get(),
        },
    }
}

/// How many more VMs of a size can start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Neither `cloud.max_vms` nor the cloud's quota sets a limit.
    Unlimited,
    Fits(u64),
    /// `cloud.max_vms` is reached: a launch waits in the queue.
    QueueFull,
    /// The project's quota holds no VM of this size: a launch would fail.
    QuotaFull,
    /// The cloud could not say (it is down, say): the launch page says so.
    Unknown,
}

impl Room {
    /// `cloud.max_vms`' free slots and the quota's room, as one answer.
    pub fn of(slots: Option<u64>, quota: Option<u64>) -> Self {
        match (slots, quota) {
            (Some(0), _) => Self::QueueFull,
            (_, Some(0)) => Self::QuotaFull,
            (None, None) => Self::Unlimited,
            (a, b) => Self::Fits(a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX))),
        }
    }

    /// "3 of this size still fit", for the launch page.
    pub fn describe(self) -> String {
        match self {
            Self::Unlimited => "no limit on VMs of this size".into(),
            Self::Fits(1) => "1 of this size still fits".into(),
            Self::Fits(n) => format!("{n} of this size still fit"),
            Self::QueueFull => {
                "none fits now: all VM slots are taken, a launch waits in the queue".into()
            }
            Self::QuotaFull => {
                "none of this size fits in the quota of the project now: pick a smaller one or try later"
                    .into()
            }
            Self::Unknown => "the cloud cannot say now how many of this size fit".into(),
        }
    }
}

impl Provisioner {
    /// The profile `name` as configured now.
    pub fn profile(&self, name: &ProfileName) -> Option<&Profile> {
        self.inner.settings.profiles.get(name)
    }

    /// What a VM of `profile` is made of.
    pub fn shape(&self, profile: Option<&Profile>) -> Shape {
        shape(&self.inner.settings.cloud, profile)
    }

    /// How many more VMs of `profile`'s size fit now: `cloud.max_vms` and
    /// the cloud's quota for its flavor and volume, and for the home volume
    /// the first launch of `owner` makes when they have none yet; a launch
    /// of the default profile may also claim a ready pool VM.
    pub async fn room_for(
        &self,
        profile: Option<&Profile>,
        owner: GithubId,
    ) -> Result<Room, ProvisionError> {
        let vms = self.inner.store.live_vms().await?;
        let slots = capacity::free_slots(&vms, &self.inner.settings);
        let storage_gb = match self.inner.settings.storage.home_volume_gb() {
            Some(gb) if self.inner.store.home_volume(owner).await?.is_none() => Some(gb),
            _ => None,
        };
        match self
            .inner
            .cloud
            .room_for(&self.shape(profile), storage_gb)
            .await
        {
            Ok(quota) => {
                // A launch that claims a ready pool VM needs no quota for
                // its server and boot volume: the pool VM holds them.
                let claimable = self.claimable_pool_vms(profile).await?;
                Ok(Room::of(slots, quota.map(|q| q + claimable)))
            }
            // Full already by `max_vms`: the cloud's answer changes nothing.
            Err(_) if slots == Some(0) => Ok(Room::QueueFull),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the room for a launch profile");
                Ok(Room::Unknown)
            }
        }
    }

    /// The ready pool VMs a launch of `profile` would claim: those of the
    /// default profile only (the pool's VMs are made of it).
    async fn claimable_pool_vms(&self, profile: Option<&Profile>) -> Result<u64, ProvisionError> {
        let settings = &self.inner.settings;
        let default = settings.profiles.default_profile().map(|p| &p.name);
        if !settings.pool.enabled() || profile.map(|p| &p.name) != default {
            return Ok(0);
        }
        let ready = self.inner.store.pool_ready_count().await?;
        Ok(u64::try_from(ready).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_the_tighter_limit() {
        assert_eq!(Room::of(None, None), Room::Unlimited);
        assert_eq!(Room::of(Some(4), None), Room::Fits(4));
        assert_eq!(Room::of(None, Some(2)), Room::Fits(2));
        assert_eq!(Room::of(Some(4), Some(2)), Room::Fits(2));
        assert_eq!(Room::of(Some(0), Some(5)), Room::QueueFull);
        assert_eq!(Room::of(Some(3), Some(0)), Room::QuotaFull);
        assert_eq!(Room::Fits(3).describe(), "3 of this size still fit");
        assert_eq!(Room::Fits(1).describe(), "1 of this size still fits");
        assert!(Room::QueueFull.describe().contains("queue"));
        assert!(Room::QuotaFull.describe().contains("quota"));
    }

    #[test]
    fn a_profile_shape_falls_back_to_the_cloud_image() {
        let cloud = CloudConfig::default();
        assert_eq!(
            shape(&cloud, None),
            Shape {
                image: cloud.image.clone(),
                flavor: cloud.flavor.clone(),
                volume_size_gb: cloud.volume_size_gb.get(),
            }
        );
        let profile: Profile = serde_json::from_value(serde_json::json!({
            "name": "big", "description": "d", "flavor": "m1.xlarge", "volume_size_gb": 300
        }))
        .unwrap();
        let big = shape(&cloud, Some(&profile));
        assert_eq!(
            (big.image.as_str(), big.flavor.as_str(), big.volume_size_gb),
            (cloud.image.as_str(), "m1.xlarge", 300)
        );
    }
}
