//! The real cloud: Keystone, Nova, Cinder, Neutron and Glance over their
//! HTTP APIs, through one authenticated session (see `session.rs` for why
//! `osauth`). Every call goes through `api::Api` (timeout, retries,
//! concurrency bound, circuit breaker); names are resolved to ids once
//! (`resolve.rs`); quotas are read before each launch (`quota.rs`).

mod api;
mod breaker;
mod check;
mod errors;
mod floating_ips;
mod images;
mod paging;
mod proxy_check;
mod quota;
mod resolve;
mod servers;
mod session;
mod storage_check;
mod volumes;

pub use api::Tuning;
pub use session::Credentials;

use super::{
    BuilderSpec, CheckItem, Cloud, CloudError, CloudResult, FloatingIp, Image, InstallationId,
    META_HOME, META_IMAGE_BUILD, META_INSTANCE, META_VM, Owned, Server, ServerSpec, ServerStatus,
    Shape, Volume, VolumeSpec,
};
use crate::config::CloudConfig;
use async_trait::async_trait;
use std::collections::BTreeMap;
use tokio::sync::OnceCell;

type ProfileShapes = std::collections::HashMap<(String, String), (resolve::Flavor, String)>;

pub struct OpenStackCloud {
    api: api::Api,
    config: CloudConfig,
    resolved: OnceCell<resolve::Resolved>,
    /// Flavors and image ids of the launch profiles' shapes, by (flavor,
    /// image) as configured.
    profile_shapes: tokio::sync::Mutex<ProfileShapes>,
    project: OnceCell<String>,
    /// Items asked for per page of a list (`paging::PAGE_SIZE`).
    page_size: usize,
    /// One VM at a time picks and attaches a free floating IP of ours
    /// (see `floating_ips`).
    fip_reuse: tokio::sync::Mutex<()>,
    /// `launch.jupyter_port`, which `check` wants closed to the internet.
    jupyter_port: u16,
}

/// Never shows credentials, tokens or the session (whose auth plugin holds
/// the password).
impl std::fmt::Debug for OpenStackCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStackCloud")
            .field("credentials", self.api.credentials())
            .field("region", &self.config.region)
            .finish_non_exhaustive()
    }
}

impl OpenStackCloud {
    /// `owner`'s VM servers and image builders.
    async fn owned_servers(
        &self,
        owner: &InstallationId,
    ) -> CloudResult<(Vec<Server>, Vec<Server>)> {
        let (mut vms, mut builders) = (Vec::new(), Vec::new());
        for server in self.list_servers().await? {
            if !owner.made(&server.metadata) {
                continue;
            }
            if server.metadata.contains_key(META_VM) {
                vms.push(server);
            } else if server.metadata.contains_key(META_IMAGE_BUILD) {
                builders.push(server);
            }
        }
        Ok((vms, builders))
    }

    /// Credentials from `cloud.cloud` (or the environment), tuning from the
    /// configuration. Nothing is called until the first request.
    pub fn from_config(config: &CloudConfig) -> Self {
        let tuning = Tuning {
            request_timeout: config.request_timeout(),
            max_concurrent_requests: config.max_concurrent_requests.get(),
            ..Tuning::default()
        };
        Self::new(config, Credentials::from_setting(&config.cloud), tuning)
    }

    pub fn new(config: &CloudConfig, credentials: Credentials, tuning: Tuning) -> Self {
        Self {
            api: api::Api::new(
                credentials,
                config.region.clone(),
                config.interface.clone(),
                tuning,
            ),
            config: config.clone(),
            resolved: OnceCell::new(),
            profile_shapes: tokio::sync::Mutex::default(),
            project: OnceCell::new(),
            page_size: paging::PAGE_SIZE,
            fip_reuse: tokio::sync::Mutex::new(()),
            jupyter_port: crate::config::LaunchConfig::default().jupyter_port.get(),
        }
    }

    /// Ask for `items` per page of every list instead (at least one); the
    /// cloud's own page size still applies. The conformance tests page
    /// the real services at 2 with it.
    pub fn with_page_size(mut self, items: usize) -> Self {
        self.page_size = items.max(1);
        self
    }

    /// The port Jupyter listens on in the VMs (`launch.jupyter_port`).
    pub fn with_jupyter_port(mut self, port: u16) -> Self {
        self.jupyter_port = port;
        self
    }
}

#[async_trait]
impl Cloud for OpenStackCloud {
    fn kind(&self) -> &'static str {
        "openstack"
    }

    #[tracing::instrument(name = "openstack create server", skip_all, fields(name = %spec.name, vm = spec.metadata.get(META_VM).map(String::as_str).unwrap_or("")))]
    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String> {
        servers::encode_user_data(&spec.user_data).map_err(|e| CloudError::Rejected(e.detail))?;
        let resolved = self.resolved().await?;
        let (flavor, image_id) = self.shape_ids(resolved, &spec.shape()).await?;
        let owner = spec
            .metadata
            .get(META_INSTANCE)
            .map(|id| InstallationId::from_stored(id.clone()));
        let usage = self
            .usage(resolved, &flavor, spec.volume_size_gb, owner.as_ref())
            .await?;
        if let Some(full) = usage.iter().find(|u| !u.has_room()) {
            return Err(CloudError::QuotaExceeded(full.describe()));
        }
        let id = self.post_server(resolved, &flavor, &image_id, spec).await?;
        tracing::info!(server = %id, "server requested");
        Ok(id)
    }

    #[tracing::instrument(name = "openstack room", skip(self))]
    async fn room_for(&self, shape: &Shape, storage_gb: Option<u32>) -> CloudResult<Option<u64>> {
        let resolved = self.resolved().await?;
        let (flavor, _) = self.shape_ids(resolved, shape).await?;
        // No owner: a free floating IP of ours is not counted, so the room
        // errs on the side of fewer.
        let mut usage = self
            .usage(resolved, &flavor, shape.volume_size_gb, None)
            .await?;
        if let Some(gb) = storage_gb {
            quota::reserve_volume(&mut usage, gb);
        }
        Ok(quota::room(&usage))
    }

    #[tracing::instrument(name = "openstack get server", skip(self))]
    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        Ok(self.show_server(id).await?)
    }

    #[tracing::instrument(name = "openstack console output", skip(self))]
    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        Ok(self.console(id, lines).await?)
    }

    #[tracing::instrument(name = "openstack attach floating IP", skip(self))]
    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        let resolved = self.resolved().await?;
        let Some(pool) = resolved.pool_id.clone() else {
            return Err(CloudError::Rejected(
                "no floating IP pool is configured (cloud.floating_ip_pool)".into(),
            ));
        };
        self.attach_fip(&pool, server_id, owner).await
    }

    #[tracing::instrument(name = "openstack tag volume", skip(self, owner))]
    async fn tag_volume(
        &self,
        volume_id: &str,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<()> {
        self.tag(volume_id, owner, vm_id).await
    }

    #[tracing::instrument(name = "openstack delete server", skip(self))]
    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        Ok(self.remove_server(id).await?)
    }

    #[tracing::instrument(name = "openstack update server", skip(self, metadata))]
    async fn update_server(
        &self,
        id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        Ok(self.put_server(id, name, metadata).await?)
    }

    #[tracing::instrument(name = "openstack attach volume", skip(self))]
    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> CloudResult<()> {
        Ok(self.post_volume_attachment(server_id, volume_id).await?)
    }

    #[tracing::instrument(name = "openstack delete volume", skip(self))]
    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.remove_volume(id).await
    }

    #[tracing::instrument(name = "openstack create volume", skip_all, fields(name = %spec.name))]
    async fn create_volume(&self, spec: &VolumeSpec) -> CloudResult<String> {
        let id = self.post_volume(spec).await?;
        tracing::info!(volume = %id, "volume requested");
        Ok(id)
    }

    #[tracing::instrument(name = "openstack get volume", skip(self))]
    async fn get_volume(&self, id: &str) -> CloudResult<Option<Volume>> {
        Ok(self.show_volume(id).await?)
    }

    #[tracing::instrument(name = "openstack find home volume", skip(self, owner))]
    async fn find_home_volume(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> CloudResult<Option<Volume>> {
        Ok(self.home_volume_of(owner, github_id).await?)
    }

    #[tracing::instrument(name = "openstack release floating IP", skip(self))]
    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.release_fip(id).await
    }

    /// Servers and volumes whose metadata names `owner` (home volumes
    /// apart), floating IPs described as `owner`'s; every page of each
    /// list. A volume an operator attached to one of our servers is not ours.
    #[tracing::instrument(name = "openstack list owned", skip_all)]
    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned> {
        let (servers, builders) = self.owned_servers(owner).await?;
        let (home_volume_ids, volume_ids) = self
            .list_volumes()
            .await?
            .into_iter()
            .filter(|v| owner.made(&v.metadata))
            .partition::<Vec<_>, _>(|v| v.metadata.contains_key(META_HOME));
        let ids = |volumes: Vec<volumes::CinderVolume>| volumes.into_iter().map(|v| v.id).collect();
        Ok(Owned {
            servers,
            builders,
            volume_ids: ids(volume_ids),
            home_volume_ids: ids(home_volume_ids),
            floating_ips: self.owned_fips(owner).await?,
        })
    }

    /// One list of servers, filtered by our metadata. A server of a cell
    /// that is down is listed without metadata and could be the one looked
    /// for, so while one is listed the answer is "unknown", never "none"
    /// (which would make a second server).
    #[tracing::instrument(name = "openstack find server", skip(self, owner))]
    async fn find_server(
        &self,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<Option<Server>> {
        let servers = self.list_servers().await?;
        let down = servers.iter().any(|s| s.status == ServerStatus::Unknown);
        let found = servers.into_iter().find(|s| {
            owner.made(&s.metadata) && s.metadata.get(META_VM).map(String::as_str) == Some(vm_id)
        });
        match found {
            None if down => Err(CloudError::Unavailable(
                "a Nova cell is down: its servers are listed without their metadata".into(),
            )),
            found => Ok(found),
        }
    }

    #[tracing::instrument(name = "openstack find builder", skip(self, owner))]
    async fn find_builder(
        &self,
        owner: &InstallationId,
        name: &str,
    ) -> CloudResult<Option<Server>> {
        let (_, builders) = self.owned_servers(owner).await?;
        Ok(builders
            .into_iter()
            .find(|s| s.metadata.get(META_IMAGE_BUILD).map(String::as_str) == Some(name)))
    }

    #[tracing::instrument(name = "openstack create image builder", skip_all, fields(name = %spec.name))]
    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        let id = self.post_builder(spec).await?;
        tracing::info!(server = %id, "image builder requested");
        Ok(id)
    }

    #[tracing::instrument(name = "openstack create image", skip(self))]
    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String> {
        Ok(self.snapshot(server_id, name).await?)
    }

    #[tracing::instrument(name = "openstack get image", skip(self))]
    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        Ok(self.show_image(id).await?)
    }

    #[tracing::instrument(name = "openstack delete image", skip(self))]
    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        Ok(self.remove_image(id).await?)
    }

    #[tracing::instrument(name = "openstack check", skip_all)]
    async fn check(&self) -> Vec<CheckItem> {
        self.run_check().await
    }

    #[tracing::instrument(name = "openstack check storage", skip_all)]
    async fn check_storage(&self, storage: &crate::config::StorageConfig) -> Vec<CheckItem> {
        // Without home volumes there is nothing to check.
        match storage.home_volume_gb() {
            Some(size_gb) => vec![self.run_storage_check(storage, size_gb).await],
            None => Vec::new(),
        }
    }

    #[tracing::instrument(name = "openstack check profiles", skip_all)]
    async fn check_profiles(&self, profiles: &[(String, Shape)]) -> Vec<CheckItem> {
        let mut items = Vec::with_capacity(profiles.len());
        for (name, shape) in profiles {
            items.push(self.check_profile(name, shape).await);
        }
        items
    }
}
