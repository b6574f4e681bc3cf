//! `stackbinder check`'s storage line (with `storage.home_volume_gb` above
//! 0): the volume type and the availability zone the home volumes are made
//! in exist in Cinder, and its quota holds a new user's storage next to
//! their VM's boot volume.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use super::quota;
use crate::cloud::CheckItem;
use crate::config::StorageConfig;
use serde::Deserialize;

const WHAT: &str = "storage";

#[derive(Deserialize)]
struct Types {
    volume_types: Vec<VolumeType>,
}

#[derive(Deserialize)]
struct VolumeType {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Zones {
    #[serde(rename = "availabilityZoneInfo")]
    zones: Vec<Zone>,
}

#[derive(Deserialize)]
struct Zone {
    #[serde(rename = "zoneName")]
    name: String,
}

impl OpenStackCloud {
    /// The line of home volumes of `size_gb`.
    pub(super) async fn run_storage_check(
        &self,
        storage: &StorageConfig,
        size_gb: u32,
    ) -> CheckItem {
        match self.storage_problem(storage, size_gb).await {
            Ok(Ok(detail)) => CheckItem::ok(WHAT, detail),
            Ok(Err((problem, fix))) => CheckItem::fail(WHAT, problem, fix),
            Err(e) => CheckItem::fail(
                WHAT,
                e.to_string(),
                "make sure the cloud answers, then run `stackbinder check` again",
            ),
        }
    }

    /// What is fine, or what is wrong and its fix.
    async fn storage_problem(
        &self,
        storage: &StorageConfig,
        size_gb: u32,
    ) -> Result<Result<String, (String, String)>, ApiError> {
        let volume = self.api.ready().await?.volume;
        if let Some(wanted) = &storage.volume_type {
            let types = self
                .api
                .call("list Cinder's volume types", Repeat::Idempotent, |r| {
                    r.session.get(volume, ["types"])
                })
                .await?
                .json::<Types>()?;
            if !types
                .volume_types
                .iter()
                .any(|t| &t.name == wanted || &t.id == wanted)
            {
                let known: Vec<&str> = types.volume_types.iter().map(|t| t.name.as_str()).collect();
                return Ok(Err((
                    format!("volume type {wanted:?} does not exist (there are: {})", known.join(", ")),
                    "set storage.volume_type to one of `openstack volume type list`, or leave it unset".into(),
                )));
            }
        }
        if let Some(wanted) = &self.config.availability_zone {
            let zones = self
                .api
                .call(
                    "list Cinder's availability zones",
                    Repeat::Idempotent,
                    |r| r.session.get(volume, ["os-availability-zone"]),
                )
                .await?
                .json::<Zones>()?;
            if !zones.zones.iter().any(|z| &z.name == wanted) {
                let known: Vec<&str> = zones.zones.iter().map(|z| z.name.as_str()).collect();
                return Ok(Err((
                    format!(
                        "Cinder has no availability zone {wanted:?} for home volumes (there are: {})",
                        known.join(", ")
                    ),
                    "set cloud.availability_zone to one of `openstack availability zone list --volume`, or leave it unset".into(),
                )));
            }
        }
        // A new user's first launch makes both: their storage and the
        // boot volume of their VM.
        let mut usage = self.volume_usage(size_gb).await?;
        quota::reserve_volume(&mut usage, self.config.volume_size_gb.get());
        let full: Vec<String> = usage
            .iter()
            .filter(|u| !u.has_room())
            .map(|u| u.describe())
            .collect();
        if !full.is_empty() {
            return Ok(Err((
                format!(
                    "no room for a new user's storage ({size_gb} GB) next to their VM's boot volume: {}",
                    full.join("; ")
                ),
                "delete unused volumes, lower storage.home_volume_gb, or ask the cloud's admins for a larger volume quota".into(),
            )));
        }
        let kind = storage.volume_type.as_deref().unwrap_or("the default type");
        let zone = self
            .config
            .availability_zone
            .as_deref()
            .unwrap_or("the default zone");
        Ok(Ok(format!(
            "home volumes of {size_gb} GB, {kind}, in {zone}; room for a new user's: {}",
            usage
                .iter()
                .map(|u| u.describe().replace("this project uses ", ""))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}
