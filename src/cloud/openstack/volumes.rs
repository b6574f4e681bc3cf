//! Cinder: mark a VM's boot volume as ours, delete it once its server is
//! gone, find the volumes an installation made, and make and read the
//! users' home volumes.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use crate::cloud::{
    CloudError, CloudResult, InstallationId, META_HOME, META_INSTANCE, META_VM, Volume, VolumeSpec,
    VolumeStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A volume as Cinder shows it (the fields we use): ours when its metadata
/// names our installation (attachments do not make a volume ours: an
/// operator may attach one of theirs to our server).
#[derive(Deserialize)]
pub struct CinderVolume {
    pub id: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    size: u32,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct Attachment {
    server_id: String,
}

impl CinderVolume {
    fn into_volume(self) -> Volume {
        Volume {
            id: self.id,
            status: VolumeStatus::from_cinder(&self.status),
            size_gb: self.size,
            availability_zone: self.availability_zone,
            attached_to: self.attachments.into_iter().map(|a| a.server_id).collect(),
            metadata: self.metadata,
        }
    }
}

#[derive(Deserialize)]
struct VolumeRoot {
    volume: CinderVolume,
}

/// The body of `POST /volumes` (api-ref: "Create a volume").
#[derive(Serialize)]
struct CreateRoot<'a> {
    volume: Create<'a>,
}

#[derive(Serialize)]
struct Create<'a> {
    name: &'a str,
    size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_zone: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
}

impl OpenStackCloud {
    /// Delete one volume. Cinder refuses while the volume is attached,
    /// detaching or being deleted by Nova (400 "Volume status must be
    /// available or error...", or 409): that is `VolumeBusy`, and the
    /// driver tries again at its next step.
    pub(super) async fn remove_volume(&self, id: &str) -> CloudResult<()> {
        let ready = self.api.ready().await.map_err(CloudError::from)?;
        let volume = ready.volume;
        match self
            .api
            .call("delete the volume", Repeat::Idempotent, |r| {
                r.session.delete(volume, ["volumes", id])
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if is_busy(&e) => Err(CloudError::VolumeBusy),
            Err(e) => Err(e.into()),
        }
    }

    /// Every volume of the project, every page.
    pub(super) async fn list_volumes(&self) -> Result<Vec<CinderVolume>, ApiError> {
        let volume = self.api.ready().await?.volume;
        self.list_all("list the volumes", "volumes", |r, paging| {
            r.session.get(volume, ["volumes", "detail"]).query(paging)
        })
        .await
    }

    /// Add our installation and VM id to a volume's metadata (Cinder
    /// merges it with what is there; repeating it does no harm).
    pub(super) async fn tag(&self, id: &str, owner: &InstallationId, vm: &str) -> CloudResult<()> {
        let volume = self.api.ready().await.map_err(CloudError::from)?.volume;
        let body = serde_json::json!({"metadata": {META_INSTANCE: owner.as_str(), META_VM: vm}});
        self.api
            .call("mark the boot volume as ours", Repeat::Idempotent, |r| {
                r.session
                    .post(volume, ["volumes", id, "metadata"])
                    .json(&body)
            })
            .await?;
        Ok(())
    }

    /// Make a volume once Cinder's quota has room for it. Sent once: an
    /// answer lost to a timeout may still have made it, and the caller
    /// looks for it by its metadata before making another.
    pub(super) async fn post_volume(&self, spec: &VolumeSpec) -> CloudResult<String> {
        if let Some(full) = self
            .volume_usage(spec.size_gb)
            .await?
            .iter()
            .find(|u| !u.has_room())
        {
            return Err(CloudError::QuotaExceeded(full.describe()));
        }
        let volume = self.api.ready().await.map_err(CloudError::from)?.volume;
        let body = CreateRoot {
            volume: Create {
                name: &spec.name,
                size: spec.size_gb,
                volume_type: spec.volume_type.as_deref(),
                availability_zone: spec.availability_zone.as_deref(),
                metadata: &spec.metadata,
            },
        };
        let reply = self
            .api
            .call("create the volume", Repeat::Once, |r| {
                r.session.post(volume, ["volumes"]).json(&body)
            })
            .await?;
        Ok(reply.json::<VolumeRoot>()?.volume.id)
    }

    pub(super) async fn show_volume(&self, id: &str) -> Result<Option<Volume>, ApiError> {
        let volume = self.api.ready().await?.volume;
        match self
            .api
            .call("look at the volume", Repeat::Idempotent, |r| {
                r.session.get(volume, ["volumes", id])
            })
            .await
        {
            Ok(reply) => Ok(Some(reply.json::<VolumeRoot>()?.volume.into_volume())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The home volume of `github_id` that `owner` made: one list, every
    /// page, filtered by our metadata.
    pub(super) async fn home_volume_of(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> Result<Option<Volume>, ApiError> {
        Ok(self
            .list_volumes()
            .await?
            .into_iter()
            .find(|v| {
                owner.made(&v.metadata)
                    && v.metadata.get(META_HOME).map(String::as_str) == Some(github_id)
            })
            .map(CinderVolume::into_volume))
    }
}

fn is_busy(e: &ApiError) -> bool {
    match e.status.map(|s| s.as_u16()) {
        Some(409) => true,
        Some(400) => e.mentions("status must be") || e.mentions("in-use") || e.mentions("attached"),
        _ => false,
    }
}
