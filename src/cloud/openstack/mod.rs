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
mod proxy_check;
mod quota;
mod resolve;
mod servers;
mod session;
mod volumes;

pub use api::Tuning;
pub use session::Credentials;

use super::{
    BuilderSpec, CheckItem, Cloud, CloudError, CloudResult, FloatingIp, Image, META_VM, Owned,
    Server, ServerSpec,
};
use crate::config::CloudConfig;
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct OpenStackCloud {
    api: api::Api,
    config: CloudConfig,
    resolved: OnceCell<resolve::Resolved>,
    project: OnceCell<String>,
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
    /// Credentials from `cloud.cloud` (or the environment), tuning from the
    /// configuration. Nothing is called until the first request.
    pub fn from_config(config: &CloudConfig) -> Self {
        let tuning = Tuning {
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            max_concurrent_requests: config.max_concurrent_requests,
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
            project: OnceCell::new(),
            jupyter_port: crate::config::LaunchConfig::default().jupyter_port,
        }
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
        let usage = self.usage(resolved).await?;
        if let Some(full) = usage.iter().find(|u| !u.has_room()) {
            return Err(CloudError::QuotaExceeded(full.describe()));
        }
        let id = self.post_server(resolved, spec).await?;
        tracing::info!(server = %id, "server requested");
        Ok(id)
    }

    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        Ok(self.show_server(id).await?)
    }

    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        Ok(self.console(id, lines).await?)
    }

    #[tracing::instrument(name = "openstack attach floating IP", skip(self))]
    async fn attach_floating_ip(&self, server_id: &str) -> CloudResult<FloatingIp> {
        let resolved = self.resolved().await?;
        let Some(pool) = resolved.pool_id.clone() else {
            return Err(CloudError::Rejected(
                "no floating IP pool is configured (cloud.floating_ip_pool)".into(),
            ));
        };
        self.attach_fip(&pool, server_id).await
    }

    #[tracing::instrument(name = "openstack delete server", skip(self))]
    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        Ok(self.remove_server(id).await?)
    }

    #[tracing::instrument(name = "openstack delete volume", skip(self))]
    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.remove_volume(id).await
    }

    #[tracing::instrument(name = "openstack release floating IP", skip(self))]
    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.release_fip(id).await
    }

    /// Servers with our `stackbinder_vm` metadata; volumes attached to them
    /// or carrying that metadata; floating IPs described `stackbinder`.
    async fn list_owned(&self) -> CloudResult<Owned> {
        let servers: Vec<Server> = self
            .list_servers()
            .await?
            .into_iter()
            .filter(|s| s.metadata.contains_key(META_VM))
            .collect();
        let ours: BTreeSet<&str> = servers.iter().map(|s| s.id.as_str()).collect();
        let mut volume_ids: Vec<String> = servers
            .iter()
            .flat_map(|s| s.volume_ids.iter().cloned())
            .collect();
        for v in self.list_volumes().await? {
            let attached_to_ours = v
                .attachments
                .iter()
                .any(|a| ours.contains(a.server_id.as_str()));
            if (attached_to_ours || v.metadata.contains_key(META_VM)) && !volume_ids.contains(&v.id)
            {
                volume_ids.push(v.id);
            }
        }
        Ok(Owned {
            servers,
            volume_ids,
            floating_ips: self.owned_fips().await?,
        })
    }

    /// One call: the project's servers, filtered by our metadata.
    async fn find_server(&self, vm_id: &str) -> CloudResult<Option<Server>> {
        Ok(self
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.metadata.get(META_VM).map(String::as_str) == Some(vm_id)))
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

    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        Ok(self.show_image(id).await?)
    }

    #[tracing::instrument(name = "openstack delete image", skip(self))]
    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        Ok(self.remove_image(id).await?)
    }

    async fn check(&self) -> Vec<CheckItem> {
        self.run_check().await
    }
}
