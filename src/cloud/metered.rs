//! A `Cloud` that times every call and counts failures, by service.

use super::{
    BuilderSpec, CheckItem, Cloud, CloudError, CloudResult, FloatingIp, Image, InstallationId,
    Owned, Server, ServerSpec, Shape, Volume, VolumeSpec,
};
use crate::metrics::Metrics;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Told of every answer: how long it took, and whether the cloud was
/// failing or asked us to slow down (the provisioner sizes its concurrency
/// by it).
pub type Observer = Box<dyn Fn(std::time::Duration, bool) + Send + Sync>;

pub struct Metered {
    inner: Arc<dyn Cloud>,
    metrics: Metrics,
    observer: Option<Observer>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Cloud>, metrics: Metrics) -> Self {
        Self {
            inner,
            metrics,
            observer: None,
        }
    }

    pub fn observed_by(self, observer: Observer) -> Self {
        Self {
            observer: Some(observer),
            ..self
        }
    }

    async fn measure<T>(
        &self,
        service: &str,
        operation: &str,
        call: impl Future<Output = CloudResult<T>>,
    ) -> CloudResult<T> {
        let started = Instant::now();
        let result = call.await;
        let took = started.elapsed();
        let error = result.as_ref().err().map(error_kind);
        self.metrics
            .cloud_call(service, operation, took.as_secs_f64(), error);
        if let Some(observer) = &self.observer {
            observer(took, error == Some("unavailable"));
        }
        result
    }
}

fn error_kind(e: &CloudError) -> &'static str {
    match e {
        CloudError::Unavailable(_) => "unavailable",
        CloudError::QuotaExceeded(_) => "quota",
        CloudError::NoFloatingIps(_) => "no_floating_ips",
        CloudError::VolumeBusy => "volume_busy",
        CloudError::Rejected(_) => "rejected",
    }
}

#[async_trait]
impl Cloud for Metered {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String> {
        self.measure("compute", "create_server", self.inner.create_server(spec))
            .await
    }

    async fn room_for(&self, shape: &Shape, storage_gb: Option<u32>) -> CloudResult<Option<u64>> {
        self.measure(
            "compute",
            "room_for",
            self.inner.room_for(shape, storage_gb),
        )
        .await
    }

    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        self.measure("compute", "get_server", self.inner.get_server(id))
            .await
    }

    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        self.measure(
            "compute",
            "console_output",
            self.inner.console_output(id, lines),
        )
        .await
    }

    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        self.measure(
            "network",
            "attach_floating_ip",
            self.inner.attach_floating_ip(server_id, owner),
        )
        .await
    }

    async fn tag_volume(
        &self,
        volume_id: &str,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<()> {
        self.measure(
            "volume",
            "tag_volume",
            self.inner.tag_volume(volume_id, owner, vm_id),
        )
        .await
    }

    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        self.measure("compute", "delete_server", self.inner.delete_server(id))
            .await
    }

    async fn update_server(
        &self,
        id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.measure(
            "compute",
            "update_server",
            self.inner.update_server(id, name, metadata),
        )
        .await
    }

    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> CloudResult<()> {
        self.measure(
            "compute",
            "attach_volume",
            self.inner.attach_volume(server_id, volume_id),
        )
        .await
    }

    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.measure("volume", "delete_volume", self.inner.delete_volume(id))
            .await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> CloudResult<String> {
        self.measure("volume", "create_volume", self.inner.create_volume(spec))
            .await
    }

    async fn get_volume(&self, id: &str) -> CloudResult<Option<Volume>> {
        self.measure("volume", "get_volume", self.inner.get_volume(id))
            .await
    }

    async fn find_home_volume(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> CloudResult<Option<Volume>> {
        self.measure(
            "volume",
            "find_home_volume",
            self.inner.find_home_volume(owner, github_id),
        )
        .await
    }

    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.measure(
            "network",
            "release_floating_ip",
            self.inner.release_floating_ip(id),
        )
        .await
    }

    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned> {
        self.measure("all", "list_owned", self.inner.list_owned(owner))
            .await
    }

    async fn find_server(
        &self,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<Option<Server>> {
        self.measure(
            "compute",
            "find_server",
            self.inner.find_server(owner, vm_id),
        )
        .await
    }

    async fn find_builder(
        &self,
        owner: &InstallationId,
        name: &str,
    ) -> CloudResult<Option<Server>> {
        self.measure(
            "compute",
            "find_builder",
            self.inner.find_builder(owner, name),
        )
        .await
    }

    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        self.measure("compute", "create_builder", self.inner.create_builder(spec))
            .await
    }

    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String> {
        self.measure(
            "compute",
            "create_image",
            self.inner.create_image(server_id, name),
        )
        .await
    }

    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        self.measure("image", "get_image", self.inner.get_image(id))
            .await
    }

    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        self.measure("image", "delete_image", self.inner.delete_image(id))
            .await
    }

    async fn check(&self) -> Vec<CheckItem> {
        self.inner.check().await
    }

    async fn check_profiles(&self, profiles: &[(String, Shape)]) -> Vec<CheckItem> {
        self.inner.check_profiles(profiles).await
    }

    async fn check_storage(&self, storage: &crate::config::StorageConfig) -> Vec<CheckItem> {
        self.inner.check_storage(storage).await
    }
}
