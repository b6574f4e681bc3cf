use crate::domain::{
    GitRef, GithubId, Ide, LaunchPath, Login, Phase, ProfileName, Progress, RepoSpec, UrlPath,
    VmId, VmState,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

/// A VM as the store holds it. Every field is decoded into its domain
/// type: a row that does not pass is a store error, not a string.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VmRecord {
    pub id: VmId,
    pub owner_id: GithubId,
    pub owner_login: Login,
    pub name: String,
    pub repo: RepoSpec,
    pub git_ref: GitRef,
    pub url_path: UrlPath,
    pub state: VmState,
    pub progress: Option<Progress>,
    /// The phase the VM was in when it reported `failed`.
    pub failed_during: Option<Phase>,
    pub server_id: Option<String>,
    pub address: Option<String>,
    pub floating_ip: Option<String>,
    pub floating_ip_id: Option<String>,
    pub volume_ids: Json<Vec<String>>,
    #[sqlx(try_from = "StoredPort")]
    pub port: Option<u16>,
    #[serde(skip)]
    pub jupyter_token: String,
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    pub last_seq: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub phase_started_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub extensions: i64,
    /// What the VM's Jupyter last reported as its last activity.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// When a failed launch's cloud resources were torn down.
    pub released_at: Option<DateTime<Utc>>,
    /// When the proxy last saw it used (flushed now and then).
    pub proxied_at: Option<DateTime<Utc>>,
    /// The launch profile it was made of; `None`: of `[cloud]`.
    pub profile: Option<ProfileName>,
    /// The interface the launch asked for (`url_path` is its path).
    pub ide: Option<Ide>,
    /// When the VM's Jupyter was found not to provide `ide`.
    pub ide_missing_at: Option<DateTime<Utc>>,
    /// Booted for this launch, or claimed from the warm pool.
    pub launch_path: LaunchPath,
    /// A claimed pool VM: when its server was renamed, marked and given
    /// its owner's storage (and floating IP).
    pub claim_settled_at: Option<DateTime<Utc>>,
    /// When it got its job (`GET /api/vm/assignment` answers it from
    /// then): a user's first claim with home volumes on gets it only once
    /// their new volume is attached.
    pub assigned_at: Option<DateTime<Utc>>,
}

/// The port column as both stores hold it: an INTEGER (PostgreSQL has no
/// unsigned types), turned into a `u16` on its way out.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct StoredPort(Option<i32>);

impl TryFrom<StoredPort> for Option<u16> {
    type Error = std::num::TryFromIntError;

    fn try_from(stored: StoredPort) -> Result<Self, Self::Error> {
        stored.0.map(u16::try_from).transpose()
    }
}

#[cfg(test)]
impl VmRecord {
    /// A record for unit tests: user 1 (`ada`), launched now, in `state`,
    /// with nothing in the cloud yet. Tests change what they look at.
    pub fn example(state: VmState) -> Self {
        let now = Utc::now();
        Self {
            id: VmId::new(),
            owner_id: GithubId(1),
            owner_login: Login::parse("ada").expect("a valid login"),
            name: "binder-ada".into(),
            repo: RepoSpec::parse("https://github.com/a/b").expect("a valid repository"),
            git_ref: GitRef::head(),
            url_path: UrlPath::default(),
            state,
            progress: None,
            failed_during: None,
            server_id: None,
            address: None,
            floating_ip: None,
            floating_ip_id: None,
            volume_ids: Json(Vec::new()),
            port: None,
            jupyter_token: "t".into(),
            secret_hash: None,
            last_seq: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            phase_started_at: now,
            ready_at: None,
            deleted_at: None,
            expires_at: None,
            extensions: 0,
            last_activity_at: None,
            released_at: None,
            proxied_at: None,
            profile: None,
            ide: None,
            ide_missing_at: None,
            launch_path: LaunchPath::Cold,
            claim_settled_at: None,
            assigned_at: None,
        }
    }
}

impl VmRecord {
    /// The phase of the launch script the VM is in, or was in when it
    /// reported a failure; `cloning` until it reports one.
    pub fn script_phase(&self) -> Phase {
        match self.progress {
            Some(Progress::Failed) => self.failed_during,
            other => other.and_then(Progress::phase),
        }
        .unwrap_or(Phase::Cloning)
    }

    /// The latest use known: through the proxy, or as Jupyter reported it.
    /// (`None` orders before any time, so `max` is the later one.)
    pub fn last_used(&self) -> Option<DateTime<Utc>> {
        self.last_activity_at.max(self.proxied_at)
    }

    /// The address users reach the VM at: its floating IP, else its own.
    pub fn public_address(&self) -> Option<&str> {
        self.floating_ip.as_deref().or(self.address.as_deref())
    }
}
