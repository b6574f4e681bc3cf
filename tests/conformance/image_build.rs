//! `image build` against the dev cloud: stackbinder's image builder boots a
//! builder server from a stock image with the rendered base-image
//! cloud-config, waits for it to power off, snapshots it with Nova's
//! createImage, waits for the image to be active in Glance and deletes the
//! builder, all through the real services.
//!
//! The fake virt driver runs no cloud-init, so two things the real builder
//! VM would do are done by a thin wrapper around the backend: it powers the
//! builder off (as the cloud-config's `power_state` would; through the real
//! Nova `os-stop` action) once Nova shows it ACTIVE, and it adds the
//! verdict line the build script prints to the (fixed) fake console.
//! Everything else is the real backend against the real services.

use crate::dev::{self, Rest};
use async_trait::async_trait;
use serde_json::json;
use stackbinder::cloud::{
    BuilderSpec, CheckItem, Cloud, CloudResult, FloatingIp, Image, InstallationId,
    META_IMAGE_BUILD, Owned, Server, ServerSpec, ServerStatus, Volume, VolumeSpec,
};
use stackbinder::image_build::{Plan, Timing, build_image};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct BuilderVm {
    inner: stackbinder::cloud::openstack::OpenStackCloud,
    admin: Rest,
    stopped: Mutex<HashSet<String>>,
}

#[async_trait]
impl Cloud for BuilderVm {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String> {
        self.inner.create_server(spec).await
    }
    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        let server = self.inner.get_server(id).await?;
        if let Some(s) = &server {
            let builder = s.metadata.contains_key(META_IMAGE_BUILD);
            if builder
                && s.status == ServerStatus::Active
                && self.stopped.lock().unwrap().insert(id.to_owned())
            {
                let (status, body) = self
                    .admin
                    .send(
                        reqwest::Method::POST,
                        "compute",
                        &format!("/servers/{id}/action"),
                        Some(json!({"os-stop": null})),
                    )
                    .await;
                assert_eq!(status, 202, "os-stop: {body}");
            }
        }
        Ok(server)
    }
    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        let fake = self.inner.console_output(id, lines).await?;
        Ok(format!("{fake}\nSTACKBINDER-IMAGE-BUILD: OK\n"))
    }
    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        self.inner.attach_floating_ip(server_id, owner).await
    }
    async fn tag_volume(&self, volume: &str, owner: &InstallationId, vm: &str) -> CloudResult<()> {
        self.inner.tag_volume(volume, owner, vm).await
    }
    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        self.inner.delete_server(id).await
    }
    async fn update_server(
        &self,
        id: &str,
        name: &str,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.inner.update_server(id, name, metadata).await
    }
    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> CloudResult<()> {
        self.inner.attach_volume(server_id, volume_id).await
    }
    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.inner.delete_volume(id).await
    }
    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.inner.release_floating_ip(id).await
    }
    async fn create_volume(&self, spec: &VolumeSpec) -> CloudResult<String> {
        self.inner.create_volume(spec).await
    }
    async fn get_volume(&self, id: &str) -> CloudResult<Option<Volume>> {
        self.inner.get_volume(id).await
    }
    async fn find_home_volume(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> CloudResult<Option<Volume>> {
        self.inner.find_home_volume(owner, github_id).await
    }
    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned> {
        self.inner.list_owned(owner).await
    }
    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        self.inner.create_builder(spec).await
    }
    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String> {
        self.inner.create_image(server_id, name).await
    }
    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        self.inner.get_image(id).await
    }
    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        self.inner.delete_image(id).await
    }
    async fn check(&self) -> Vec<CheckItem> {
        self.inner.check().await
    }
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up"]
async fn image_build_snapshots_a_builder_into_an_active_image_and_leaves_no_builder() {
    // Arrange
    let _one_at_a_time = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = dev::config(dir.path());
    config.image.base_image = dev::IMAGE.into();
    config.image.builder_flavor = dev::FLAVOR.into();
    let name = format!("sbconf-image-{}", uuid::Uuid::new_v4().simple());
    let plan = Plan::from_config(&config.image, Some(name.clone()), None, None).unwrap();
    let mut timing = Timing::from_config(&config);
    timing.build_timeout = Duration::from_secs(180);
    timing.snapshot_timeout = Duration::from_secs(180);
    let cloud = BuilderVm {
        inner: dev::backend(&config.cloud),
        admin: admin.clone(),
        stopped: Mutex::default(),
    };
    let mut steps = Vec::new();

    // Act
    let built = build_image(
        &cloud,
        &InstallationId::generate(),
        &plan,
        &timing,
        &mut |p| steps.push(format!("{p:?}")),
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|f| panic!("the build failed: {} (steps: {steps:#?})", f.error));

    // Assert: Glance holds the image, active, under its name...
    let image = admin
        .get("image", &format!("/v2/images/{}", built.image_id))
        .await;
    assert_eq!(image["name"], name.as_str());
    assert_eq!(image["status"], "active");
    assert!(
        built.left_behind.is_empty(),
        "left behind: {:?}",
        built.left_behind
    );
    // ...the builder booted with the rendered base-image cloud-config was
    // stopped and is gone, and no volume is left.
    assert_eq!(
        cloud.stopped.lock().unwrap().len(),
        1,
        "one builder was booted"
    );
    let (servers, volumes, _) = admin.inventory().await;
    assert!(servers.is_empty(), "the builder is deleted: {servers:?}");
    assert!(volumes.is_empty(), "no volume is left: {volumes:?}");

    // Clean up the image for the next run.
    let (status, body) = admin
        .send(
            reqwest::Method::DELETE,
            "image",
            &format!("/v2/images/{}", built.image_id),
            None,
        )
        .await;
    assert_eq!(status, 204, "image delete: {body}");
}
