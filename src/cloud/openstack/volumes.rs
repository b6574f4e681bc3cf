//! Cinder: mark a VM's boot volume as ours, delete it once its server is
//! gone, and find the volumes an installation made.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use crate::cloud::{CloudError, CloudResult, InstallationId, META_INSTANCE, META_VM};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A volume as Cinder lists it: ours when its metadata names our
/// installation (attachments do not make a volume ours: an operator may
/// attach one of theirs to our server).
#[derive(Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
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
    pub(super) async fn list_volumes(&self) -> Result<Vec<Volume>, ApiError> {
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
}

fn is_busy(e: &ApiError) -> bool {
    match e.status.map(|s| s.as_u16()) {
        Some(409) => true,
        Some(400) => e.mentions("status must be") || e.mentions("in-use") || e.mentions("attached"),
        _ => false,
    }
}
