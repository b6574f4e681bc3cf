//! Cinder: delete a VM's volumes once its server is gone, and find them.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use crate::cloud::{CloudError, CloudResult};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct VolumeList {
    volumes: Vec<Volume>,
}

#[derive(Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub struct Attachment {
    pub server_id: String,
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

    pub(super) async fn list_volumes(&self) -> Result<Vec<Volume>, ApiError> {
        let volume = self.api.ready().await?.volume;
        let reply = self
            .api
            .call("list the volumes", Repeat::Idempotent, |r| {
                r.session.get(volume, ["volumes", "detail"])
            })
            .await?;
        Ok(reply.json::<VolumeList>()?.volumes)
    }
}

fn is_busy(e: &ApiError) -> bool {
    match e.status.map(|s| s.as_u16()) {
        Some(409) => true,
        Some(400) => e.mentions("status must be") || e.mentions("in-use") || e.mentions("attached"),
        _ => false,
    }
}
