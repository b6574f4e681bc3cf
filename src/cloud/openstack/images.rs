//! The image build's calls: boot the builder (Nova), snapshot it (Nova
//! `createImage`), and follow or delete the snapshot (Glance v2).

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::{ApiError, ApiErrorKind};
use super::resolve::{LookupError, pick_network};
use super::servers::Created;
use super::servers::encode_user_data;
use super::session::{COMPUTE, NOVA_MICROVERSION};
use crate::cloud::{BuilderSpec, CloudError, CloudResult, Image, ImageStatus};
use osauth::services::IMAGE;
use serde::Deserialize;
use serde_json::json;

/// Nova's answer to `createImage` from microversion 2.45 on.
#[derive(Deserialize)]
struct Snapshot {
    image_id: String,
}

/// An image as Glance v2 shows it (the fields we use).
#[derive(Deserialize)]
struct GlanceImage {
    id: String,
    #[serde(default)]
    name: Option<String>,
    status: String,
}

impl GlanceImage {
    fn into_image(self) -> Image {
        let status = match self.status.as_str() {
            "active" => ImageStatus::Active,
            // Glance's dead ends: the upload failed, or someone removed
            // or deactivated it.
            "killed" | "deleted" | "pending_delete" | "deactivated" => {
                ImageStatus::Failed(self.status)
            }
            _ => ImageStatus::Pending(self.status),
        };
        Image {
            id: self.id,
            name: self.name.unwrap_or_default(),
            status,
        }
    }
}

/// A lookup of the builder's image or flavor whose fix names the keys of
/// `[image]`, not those of `[cloud]`.
fn for_builder(e: LookupError, from: &str, to: &str) -> CloudError {
    match e {
        LookupError::Missing { problem, fix } => LookupError::Missing {
            problem,
            fix: fix.replace(from, to),
        }
        .into(),
        other => other.into(),
    }
}

/// The new image's id: in the body from microversion 2.45 on, in the
/// `Location` header (`.../images/<id>`) before.
fn image_id_of(body: &[u8], location: Option<&str>) -> Result<String, ApiError> {
    if let Ok(snapshot) = serde_json::from_slice::<Snapshot>(body) {
        return Ok(snapshot.image_id);
    }
    location
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                "snapshot the builder",
                ApiErrorKind::BadAnswer,
                "Nova gave neither an image_id nor a Location for the new image",
            )
        })
}

impl OpenStackCloud {
    /// Boot the builder from `spec.image` onto the flavor's root disk, on
    /// the network with the key pair and security groups of `[cloud]`.
    /// Its names are looked up now, not cached: `cloud.image` (the
    /// snapshot) need not exist yet, and the command runs once.
    pub(super) async fn post_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        let user_data =
            encode_user_data(&spec.user_data).map_err(|e| CloudError::Rejected(e.detail))?;
        let c = &self.config;
        let image_id = self.image(&spec.image).await.map_err(|e| {
            for_builder(
                e,
                "set cloud.image",
                "set image.base_image (or --base-image)",
            )
        })?;
        let flavor = self.flavor(&spec.flavor).await.map_err(|e| {
            for_builder(
                e,
                "set cloud.flavor",
                "set image.builder_flavor (or --flavor)",
            )
        })?;
        let networks = self.networks().await?;
        let network_id = pick_network(&networks, c.network.as_deref())?;
        let security_groups: Vec<_> = self
            .security_groups(&c.security_groups)
            .await?
            .into_iter()
            .map(|id| json!({ "name": id }))
            .collect();
        if let Some(key) = &c.key_name {
            self.key_pair(key).await?;
        }
        let mut server = json!({
            "name": spec.name,
            "imageRef": image_id,
            "flavorRef": flavor.id,
            "networks": [{ "uuid": network_id }],
            "user_data": user_data,
            "metadata": spec.metadata,
        });
        if !security_groups.is_empty() {
            server["security_groups"] = json!(security_groups);
        }
        if let Some(key) = &c.key_name {
            server["key_name"] = json!(key);
        }
        let body = json!({ "server": server });
        let reply = self
            .api
            .call("create the image builder", Repeat::Once, |r| {
                r.session
                    .post(COMPUTE, ["servers"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&body)
            })
            .await
            .map_err(|e| {
                if e.mentions("zero disk") {
                    CloudError::Rejected(format!(
                        "{e} (fix: the builder boots onto the flavor's root disk; set image.builder_flavor to a flavor with a disk)"
                    ))
                } else {
                    e.into()
                }
            })?;
        Ok(reply.json::<Created>()?.server.id)
    }

    /// Nova `createImage`. Not repeated after a timeout: a second call
    /// would make a second image.
    pub(super) async fn snapshot(&self, server_id: &str, name: &str) -> Result<String, ApiError> {
        let body = json!({ "createImage": { "name": name, "metadata": {
            "stackbinder_built_by": "stackbinder image build",
        } } });
        let reply = self
            .api
            .call("snapshot the builder", Repeat::Once, |r| {
                r.session
                    .post(COMPUTE, ["servers", server_id, "action"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&body)
            })
            .await?;
        image_id_of(reply.body(), reply.location())
    }

    pub(super) async fn show_image(&self, id: &str) -> Result<Option<Image>, ApiError> {
        match self
            .api
            .call("look at the image", Repeat::Idempotent, |r| {
                r.session.get(IMAGE, ["images", id])
            })
            .await
        {
            Ok(reply) => Ok(Some(reply.json::<GlanceImage>()?.into_image())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn remove_image(&self, id: &str) -> Result<(), ApiError> {
        match self
            .api
            .call("delete the image", Repeat::Idempotent, |r| {
                r.session.delete(IMAGE, ["images", id])
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_states_map_to_ours() {
        let image = |status: &str| {
            serde_json::from_value::<GlanceImage>(json!({"id": "i", "name": "n", "status": status}))
                .unwrap()
                .into_image()
                .status
        };
        assert_eq!(image("active"), ImageStatus::Active);
        assert_eq!(image("saving"), ImageStatus::Pending("saving".into()));
        assert_eq!(image("queued"), ImageStatus::Pending("queued".into()));
        assert_eq!(image("killed"), ImageStatus::Failed("killed".into()));
    }

    #[test]
    fn the_new_image_id_comes_from_the_body_or_else_the_location() {
        let body = br#"{"image_id": "0e7761dd-ee98-41f0-ba35-05994e446431"}"#;
        assert_eq!(
            image_id_of(body, None).unwrap(),
            "0e7761dd-ee98-41f0-ba35-05994e446431"
        );
        let location = "http://glance.example/v2/images/6f2c8a3e-1d7b-4e8a-9a1f-2b3c4d5e6f70";
        assert_eq!(
            image_id_of(b"", Some(location)).unwrap(),
            "6f2c8a3e-1d7b-4e8a-9a1f-2b3c4d5e6f70"
        );
        assert!(image_id_of(b"", None).is_err());
    }
}
