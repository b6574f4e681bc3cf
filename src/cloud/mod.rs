//! The only door to a cloud. The provisioner speaks to this trait; the
//! simulated cloud implements it in-process for the demo and the tests, and
//! `openstack` implements it against a real OpenStack cloud.

pub mod metered;
pub mod openstack;
pub mod simulated;
pub mod teardown;
mod volume;

pub use volume::{META_HOME, Volume, VolumeSpec, VolumeStatus};

use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;

/// Metadata keys that mark what stackbinder created (DESIGN: tagging).
pub const META_OWNER: &str = "stackbinder_owner";
pub const META_LOGIN: &str = "stackbinder_login";
pub const META_REPO: &str = "stackbinder_repo";
pub const META_VM: &str = "stackbinder_vm";
/// Marks a warm-pool VM nobody claimed yet (with `META_VM`, the id it
/// keeps); a claim replaces it with the owner's metadata.
pub const META_POOL: &str = "stackbinder_pool";
/// Marks the builder VM of `stackbinder image build` (never `META_VM`, so
/// the reconciler of a running server leaves it alone).
pub const META_IMAGE_BUILD: &str = "stackbinder_image_build";
/// The installation that made a server, volume or floating IP. Only
/// resources carrying this installation's id are ever deleted by it.
pub const META_INSTANCE: &str = "stackbinder_instance";
/// When the `image build` that booted a builder gives up on it at the
/// latest (RFC 3339, UTC): until then a running build may still own it.
pub const META_BUILD_UNTIL: &str = "stackbinder_build_until";

/// Which stackbinder made a resource: a random id made once per database
/// (`Store::installation_id`), so two installations on one project can
/// tell their resources apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct InstallationId(String);

impl InstallationId {
    /// A new random id: 32 hex digits, valid as Nova metadata, a Cinder
    /// metadata value and in a Neutron description.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id as the database keeps it.
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `metadata` says this installation made the resource.
    pub fn made(&self, metadata: &BTreeMap<String, String>) -> bool {
        metadata.get(META_INSTANCE).map(String::as_str) == Some(self.as_str())
    }
}

impl std::fmt::Display for InstallationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything needed to boot one user's server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSpec {
    pub name: String,
    pub image: String,
    pub flavor: String,
    /// Boot from a new volume of this size, made from `image`.
    pub volume_size_gb: u32,
    pub delete_volume_on_termination: bool,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    pub network: Option<String>,
    #[serde(skip)]
    pub user_data: String,
    pub metadata: BTreeMap<String, String>,
    /// The owner's home volume, attached at boot as a second disk that the
    /// server's deletion keeps (`[storage]`).
    pub home_volume: Option<String>,
    /// Unset: the cloud's default zone (`cloud.availability_zone`).
    pub availability_zone: Option<String>,
}

/// What a VM is made of: the image its boot volume is made from, the
/// flavor and the volume's size (`[cloud]`, or a launch profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub image: String,
    pub flavor: String,
    pub volume_size_gb: u32,
}

impl ServerSpec {
    pub fn shape(&self) -> Shape {
        Shape {
            image: self.image.clone(),
            flavor: self.flavor.clone(),
            volume_size_gb: self.volume_size_gb,
        }
    }
}

/// The VM `stackbinder image build` boots: from `image` onto the flavor's
/// root disk (see `image_build` for why not from a volume), with the
/// network, key pair and security groups of `[cloud]`.
#[derive(Debug, Clone, Serialize)]
pub struct BuilderSpec {
    pub name: String,
    /// The stock base image, name or id.
    pub image: String,
    /// Name or id.
    pub flavor: String,
    #[serde(skip)]
    pub user_data: String,
    pub metadata: BTreeMap<String, String>,
}

/// Where an image stands in Glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ImageStatus {
    /// Still being made (`queued`, `saving`, ...: Glance's word).
    Pending(String),
    Active,
    /// It will never become active (`killed`, `deleted`, ...).
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub status: ImageStatus,
}

/// Our own small view of Nova's server status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ServerStatus {
    Build,
    Active,
    Error,
    Stopped,
    Deleting,
    /// The cloud cannot say now (Nova: a server in a cell that is down).
    /// It exists: never take it for gone.
    Unknown,
    Other(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub status: ServerStatus,
    /// Nova's `fault.message` when the server is in ERROR.
    pub fault: Option<String>,
    /// Fixed (project network) addresses.
    pub addresses: Vec<String>,
    /// Volumes attached to the server (the boot volume first).
    pub volume_ids: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    /// When Nova made it; `None` when the cloud does not say (a server in
    /// a cell that is down).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloatingIp {
    pub id: String,
    pub address: String,
}

/// Everything in the cloud that carries one installation's id.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Owned {
    /// VM servers (`stackbinder_vm`).
    pub servers: Vec<Server>,
    /// Image builders (`stackbinder_image_build`).
    pub builders: Vec<Server>,
    /// Volumes of ours that are not home volumes.
    pub volume_ids: Vec<String>,
    /// Users' home volumes (`META_HOME`): never orphans.
    pub home_volume_ids: Vec<String>,
    pub floating_ips: Vec<FloatingIp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("the cloud is unreachable or failing: {0}")]
    Unavailable(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("the cloud is out of floating IPs: {0}")]
    NoFloatingIps(String),
    #[error("the volume is still in use")]
    VolumeBusy,
    #[error("the cloud refused the request: {0}")]
    Rejected(String),
}

impl CloudError {
    /// Worth trying again later (as opposed to a request that will never work).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::VolumeBusy)
    }
}

pub type CloudResult<T> = Result<T, CloudError>;

/// One line of `stackbinder check`: something the configuration needs from
/// the cloud, whether it is there, and how to fix it when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    pub what: String,
    pub ok: bool,
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl CheckItem {
    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            what: what.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[async_trait]
pub trait Cloud: Send + Sync {
    /// Which backend this is, for logs and `/healthz`.
    fn kind(&self) -> &'static str;

    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String>;

    /// How many more VMs of `shape` the project's quota holds right now,
    /// the first of them also making a home volume of `storage_gb` (a
    /// user's first launch); `None` when the cloud sets no limit (or cannot
    /// say).
    async fn room_for(&self, _shape: &Shape, _storage_gb: Option<u32>) -> CloudResult<Option<u64>> {
        Ok(None)
    }

    /// `None` once the server is gone.
    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>>;

    /// The last `lines` lines of the serial console.
    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String>;

    /// Give the server a public address: reuse a free floating IP that
    /// `owner` allocated earlier, else allocate one from the pool, marked
    /// as `owner`'s. Never takes another's floating IP, and never gives
    /// one address to two servers attaching at the same time.
    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp>;

    /// Mark a volume as made by `owner` for VM `vm_id` (Cinder metadata),
    /// so it is found and deleted even once its server is gone.
    async fn tag_volume(
        &self,
        volume_id: &str,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<()>;

    /// Ask for deletion; gone means `get_server` returns `None`. Deleting a
    /// server that is already gone is not an error.
    async fn delete_server(&self, id: &str) -> CloudResult<()>;

    /// Rename a server and replace its metadata: a claimed pool VM takes
    /// its owner's name and marks.
    async fn update_server(
        &self,
        id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> CloudResult<()>;

    /// Attach an existing volume to a running server (Nova
    /// `os-volume_attachments`); it is attached once Cinder shows it
    /// `in-use` with the server among its attachments.
    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> CloudResult<()>;

    /// Delete a volume; one that is already gone is not an error.
    async fn delete_volume(&self, id: &str) -> CloudResult<()>;

    /// Make a new volume (a user's home volume), after checking that the
    /// quota has room for it; its id. It becomes available later.
    async fn create_volume(&self, spec: &VolumeSpec) -> CloudResult<String>;

    /// `None` once the volume is gone.
    async fn get_volume(&self, id: &str) -> CloudResult<Option<Volume>>;

    /// The home volume `owner` made for the user with this GitHub id (its
    /// `stackbinder_home` metadata), if any: a volume made by a step that
    /// died before recording it is adopted, never made twice.
    async fn find_home_volume(
        &self,
        owner: &InstallationId,
        github_id: &str,
    ) -> CloudResult<Option<Volume>>;

    /// Give a floating IP back to the pool; one already gone is not an error.
    async fn release_floating_ip(&self, id: &str) -> CloudResult<()>;

    /// Everything carrying `owner`'s id, every page of every list.
    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned>;

    /// The server `owner` created for stackbinder VM `vm_id` (its
    /// `stackbinder_vm` metadata), if any. Backends may answer with fewer
    /// calls than a full `list_owned`.
    async fn find_server(
        &self,
        owner: &InstallationId,
        vm_id: &str,
    ) -> CloudResult<Option<Server>> {
        let owned = self.list_owned(owner).await?;
        Ok(owned
            .servers
            .into_iter()
            .find(|s| s.metadata.get(META_VM).map(String::as_str) == Some(vm_id)))
    }

    /// The builder `owner`'s `image build` booted for image `name` (its
    /// `stackbinder_image_build` metadata), if any.
    async fn find_builder(
        &self,
        owner: &InstallationId,
        name: &str,
    ) -> CloudResult<Option<Server>> {
        let owned = self.list_owned(owner).await?;
        Ok(owned
            .builders
            .into_iter()
            .find(|s| s.metadata.get(META_IMAGE_BUILD).map(String::as_str) == Some(name)))
    }

    /// Boot the image builder VM; its id.
    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String>;

    /// Snapshot a server into a new image named `name` (Nova `createImage`);
    /// the new image's id. The image becomes active later.
    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String>;

    /// `None` once the image is gone.
    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>>;

    /// Delete an image; one that is already gone is not an error.
    async fn delete_image(&self, id: &str) -> CloudResult<()>;

    /// Verify that what the configuration names exists and that there is
    /// room for one more VM (`stackbinder check`).
    async fn check(&self) -> Vec<CheckItem>;

    /// The line of home volumes (`[storage]`): their volume type and zone
    /// exist, and the quota holds a new user's (`stackbinder check`).
    /// Nothing to check by default.
    async fn check_storage(&self, _storage: &crate::config::StorageConfig) -> Vec<CheckItem> {
        Vec::new()
    }

    /// One line per launch profile (its name and shape): its flavor and
    /// image exist (`stackbinder check`). Nothing to check by default.
    async fn check_profiles(&self, _profiles: &[(String, Shape)]) -> Vec<CheckItem> {
        Vec::new()
    }
}
