//! The launch/delete state machine. Web handlers and the CLI only record
//! what a user asked for; the driver (`driver.rs`) moves every unfinished VM
//! forward, one persisted step at a time, so a restart resumes where it was.

pub mod archive;
mod assignment;
mod capacity;
mod concurrency;
mod driver;
pub mod jupyter;

pub use driver::StepError;
mod leading;
mod lifecycle;
pub mod pool;
mod profiles;
pub mod reconcile;
mod retention;
mod server_spec;
mod storage;

pub use storage::{Purge, StorageError};

pub use profiles::{Room, shape as profile_shape};

use crate::cloud::metered::Metered;
use crate::cloud::{Cloud, CloudError, InstallationId};
use crate::cloud_init::CallbackReport;
use crate::config::{CloudConfig, LaunchConfig, PoolConfig, Profiles, StorageConfig};
use crate::domain::{GithubId, LaunchRequest, LogLine, VmId, VmState};
use crate::lease::Leadership;
use crate::metrics::Metrics;
use crate::secret;
use crate::store::{CallbackOutcome, NewVm, Store, StoreError, User, VmRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use url::Url;

/// Why a VM is deleted, as counted in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    Owner,
    Admin,
    /// Its owner lost access.
    Revoked,
    CommandLine,
    Expired,
    Idle,
    /// Its server disappeared from the cloud.
    Vanished,
}

impl DeleteReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Revoked => "revoked",
            Self::CommandLine => "cli",
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Vanished => "vanished",
        }
    }
}

/// A VM whose callback secret was checked (`Provisioner::authenticate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedVm(VmId);

impl AuthenticatedVm {
    pub fn id(&self) -> VmId {
        self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("you already have a VM")]
    AlreadyHasVm(Box<VmRecord>),
    #[error("unknown VM or wrong secret")]
    Unauthorized,
    #[error("launches are paused: {0}")]
    Paused(String),
    /// `launch.allowed_hosts` or `launch.banned_repos` keep the repository out.
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// What the provisioner needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub public_url: Url,
    /// Where the VMs report to (`server.callback_url`, else `public_url`).
    pub callback_url: Url,
    pub cloud: CloudConfig,
    pub launch: LaunchConfig,
    /// `[[profiles]]`: what a VM may be made of besides `[cloud]`.
    pub profiles: Profiles,
    pub storage: StorageConfig,
    /// `[pool]`: the warm pool.
    pub pool: PoolConfig,
    pub poll_interval: Duration,
    /// The most VMs the driver moves forward at once.
    pub concurrency: usize,
    pub reconcile_interval: Duration,
    pub orphan_grace: Duration,
    pub idle_check_interval: Duration,
    /// A deletion the cloud has not finished after this long is asked for
    /// again, and again every as often.
    pub delete_retry: Duration,
    /// After this long a deletion fails with its reason, and the VM's
    /// expiry is set to try again half an hour later (never giving up for
    /// good: that would leak the server).
    pub delete_give_up: Duration,
    /// An image builder older than this, whose build has passed its own
    /// deadline, is deleted (`image.build_timeout_minutes`).
    pub build_timeout: Duration,
    /// How many waits, doubling from one poll interval, a lost `POST
    /// /servers` answer is looked for across (one look per driver step
    /// after each) before the server is created again.
    pub create_lookups: u32,
    /// How long a VM's request for its job is held while it has none.
    pub assignment_hold: Duration,
}

#[derive(Clone)]
pub struct Provisioner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// The same store, fenced by the driver lease: every write of the
    /// driver goes through it, so a replica that lost the lease moves no VM.
    driver_store: Store,
    /// Whether this replica leads the background work (`crate::lease`).
    leadership: Leadership,
    cloud: Arc<dyn Cloud>,
    settings: Settings,
    /// This installation's id: everything it creates carries it, and it
    /// touches nothing that does not.
    installation: InstallationId,
    /// Wakes the driver's loop over the VMs, and the warm pool's.
    wake: Notify,
    pool_wake: Notify,
    /// Readiness probes of the VMs' Jupyter.
    http: reqwest::Client,
    /// The last transient error reported per VM, so a cloud that is down
    /// for an hour does not fill the event log with the same line.
    last_errors: Mutex<HashMap<VmId, String>>,
    metrics: Metrics,
    /// When each ready VM's Jupyter was last asked about activity.
    idle_checks: Mutex<HashMap<VmId, std::time::Instant>>,
    /// When a stalled deletion was last asked for again.
    delete_retries: Mutex<HashMap<VmId, std::time::Instant>>,
    /// The searches for servers whose create answer was lost.
    lost_creates: Mutex<HashMap<VmId, driver::LostCreate>>,
    reconciler: Mutex<reconcile::Memory>,
    /// When each VM was last used through the proxy (idle culling).
    activity: crate::proxy::Activity,
    /// How many VMs the driver moves forward at once (at most
    /// `settings.concurrency`), sized by the cloud's answers.
    concurrency: Arc<concurrency::AdaptiveConcurrency>,
    /// The VMs' requests for their job held now, to be woken by a claim.
    assignment_waiters: assignment::Waiters,
}

impl Provisioner {
    pub fn new(
        store: Store,
        cloud: Arc<dyn Cloud>,
        settings: Settings,
        installation: InstallationId,
    ) -> Self {
        let metrics = Metrics::with_sqlite(store.busy_counts());
        let concurrency = Arc::new(concurrency::AdaptiveConcurrency::new(settings.concurrency));
        let observer = concurrency.clone();
        let cloud: Arc<dyn Cloud> = Arc::new(Metered::new(cloud, metrics.clone()).observed_by(
            Box::new(move |took, overloaded| observer.record(took, overloaded)),
        ));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds");
        let leadership = Leadership::new();
        Self {
            inner: Arc::new(Inner {
                driver_store: store.fenced_by(&leadership),
                leadership,
                store,
                cloud,
                settings,
                installation,
                wake: Notify::new(),
                pool_wake: Notify::new(),
                http,
                last_errors: Mutex::default(),
                metrics,
                idle_checks: Mutex::default(),
                delete_retries: Mutex::default(),
                lost_creates: Mutex::default(),
                reconciler: Mutex::default(),
                activity: crate::proxy::Activity::default(),
                concurrency,
                assignment_waiters: assignment::Waiters::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether this replica leads the background work.
    pub fn leadership(&self) -> &Leadership {
        &self.inner.leadership
    }

    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.inner.cloud
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn installation(&self) -> &InstallationId {
        &self.inner.installation
    }

    /// What the proxy saw of each VM's use; idle culling reads it.
    pub fn activity(&self) -> &crate::proxy::Activity {
        &self.inner.activity
    }

    /// Record a launch for `user` and wake the driver. A user who already has
    /// a VM gets it back instead of a second one.
    #[tracing::instrument(name = "launch", skip_all, fields(user = %user.login))]
    pub async fn launch(
        &self,
        user: &User,
        request: &LaunchRequest,
    ) -> Result<VmRecord, ProvisionError> {
        if self.inner.settings.cloud.max_vms == Some(0) {
            return Err(ProvisionError::Paused(
                "this server is in maintenance (cloud.max_vms = 0)".into(),
            ));
        }
        self.inner
            .settings
            .launch
            .permits(&request.repo)
            .map_err(ProvisionError::NotAllowed)?;
        // A launch without a profile (the command line's) gets the default.
        let profiles = &self.inner.settings.profiles;
        let profile = match &request.profile {
            Some(name) if profiles.get(name).is_none() => {
                return Err(ProvisionError::NotAllowed(format!(
                    "there is no launch profile \"{name}\" on this server"
                )));
            }
            Some(name) => Some(name.clone()),
            None => profiles.default_profile().map(|p| p.name.clone()),
        };
        let request = &LaunchRequest {
            profile,
            ..request.clone()
        };
        let name = format!("{}{}", self.inner.settings.cloud.name_prefix, user.login);
        let token = secret::generate();
        let new = NewVm {
            owner: user.github_id,
            name: &name,
            request,
            jupyter_token: &token,
            expires_at: chrono::Utc::now() + hours(self.inner.settings.launch.max_lifetime_hours),
        };
        let inserted = match self.claim_from_pool(&user.login, new).await {
            Ok(Some(claimed)) => Ok(claimed),
            Ok(None) => self.inner.store.insert_vm(new).await,
            Err(e) => Err(e),
        };
        match inserted {
            Ok(vm) => {
                tracing::info!(vm = %vm.id, repo = %request.repo, "launch recorded");
                self.inner.metrics.launch_requested();
                self.wake();
                Ok(vm)
            }
            Err(StoreError::AlreadyHasVm) => {
                match self.inner.store.live_vm_of(user.github_id).await? {
                    Some(vm) => Err(ProvisionError::AlreadyHasVm(Box::new(vm))),
                    // It was deleted between our insert and this read: try once more.
                    None => Box::pin(self.launch(user, request)).await,
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ask for the deletion of a VM; the driver does the work. `why` is
    /// for the event log, `reason` for the metrics.
    #[tracing::instrument(name = "delete", skip_all, fields(vm = %vm.id, user = %vm.owner_login))]
    pub async fn delete(
        &self,
        vm: &VmRecord,
        reason: DeleteReason,
        why: &str,
    ) -> Result<bool, ProvisionError> {
        Ok(self
            .request_delete(&self.inner.store, vm.id, reason, why)
            .await?)
    }

    /// Record a deletion through `store`: the plain one for what people
    /// ask for, the driver's fenced one for expiry, culling and the
    /// reconciler.
    async fn request_delete(
        &self,
        store: &Store,
        id: VmId,
        reason: DeleteReason,
        why: &str,
    ) -> Result<bool, StoreError> {
        let moved = store.request_delete(id, why).await?;
        if moved {
            tracing::info!(vm = %id, why, "deletion recorded");
            self.inner.metrics.deletion_requested(reason.label());
            self.wake();
            // A VM waiting for its job learns at once that none will come.
            self.assignment_ready(id);
        }
        Ok(moved)
    }

    /// Push a VM's expiry back by `launch.extension_hours`, at most
    /// `launch.max_extensions` times; false once it has had them all.
    #[tracing::instrument(name = "extend", skip_all, fields(vm = %vm.id, user = %vm.owner_login))]
    pub async fn extend(&self, vm: &VmRecord) -> Result<bool, ProvisionError> {
        let launch = &self.inner.settings.launch;
        Ok(self
            .inner
            .store
            .extend(vm, launch.max_extensions, hours(launch.extension_hours))
            .await?)
    }

    /// The VM a user's pages and commands are about: their live one, else
    /// their latest.
    pub async fn current_vm(&self, owner: GithubId) -> Result<Option<VmRecord>, ProvisionError> {
        if let Some(vm) = self.inner.store.live_vm_of(owner).await? {
            return Ok(Some(vm));
        }
        Ok(self
            .inner
            .store
            .list_vms_of(owner)
            .await?
            .into_iter()
            .next())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A progress report from a VM that proved who it is.
    #[tracing::instrument(name = "report", skip_all, fields(vm = %vm.id()))]
    pub async fn report(
        &self,
        vm: AuthenticatedVm,
        report: &CallbackReport,
    ) -> Result<CallbackOutcome, ProvisionError> {
        if vm.0 != report.vm {
            return Err(ProvisionError::Unauthorized);
        }
        let log: Vec<LogLine> = report
            .log
            .iter()
            .rev()
            .take(200)
            .rev()
            .map(|line| LogLine::from_vm(line))
            .collect();
        let outcome = self
            .inner
            .store
            .apply_callback(report.vm, report.seq, report.phase, report.port, &log)
            .await?;
        if outcome == CallbackOutcome::Applied {
            if let (Some(used), Some(total)) = (report.home_used_bytes, report.home_total_bytes) {
                let store = &self.inner.store;
                store.home_volume_usage(report.vm, used, total).await?;
            }
            self.wake();
        }
        Ok(outcome)
    }

    /// The Jupyter link of a ready VM, for its owner's eyes only.
    pub fn jupyter_url(&self, vm: &VmRecord) -> Option<Url> {
        if vm.state != VmState::Ready {
            return None;
        }
        let s = &self.inner.settings;
        jupyter::owner_link(vm, s.cloud.jupyter_access, &s.public_url)
    }

    /// Where stackbinder reaches a VM's Jupyter: `http://<address>:<port>/user/<login>/`.
    fn jupyter_upstream(&self, vm: &VmRecord) -> Option<Url> {
        jupyter::upstream(vm, self.inner.settings.cloud.jupyter_access)
    }

    /// Wake the driver now instead of at its next tick.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
        self.inner.pool_wake.notify_one();
    }
}

/// A duration of (possibly fractional) hours from the configuration.
pub fn hours(h: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((h * 3_600_000.0) as i64)
}
