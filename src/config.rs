//! Typed configuration: `config.toml`, then `STACKBINDER_<SECTION>__<KEY>`
//! environment overrides; secrets from the value itself or from a file.
//!
//! Every problem is reported as the key, what is wrong with its value and how
//! to fix it, because the person reading it is an operator at a terminal.

use crate::domain::{GithubId, Login, RepoPattern, RepoSpec, repo_policy};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub github: GithubConfig,
    #[serde(default)]
    pub registration: RegistrationConfig,
    #[serde(default)]
    pub cloud: CloudConfig,
    #[serde(default)]
    pub launch: LaunchConfig,
    #[serde(default)]
    pub provision: ProvisionConfig,
    #[serde(default)]
    pub simulator: SimulatorConfig,
    #[serde(default)]
    pub image: ImageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port` to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The URL users (and VMs) reach this server at.
    pub public_url: Url,
    /// A session ends after this long without a request.
    pub session_idle_minutes: u32,
    /// A session ends this long after login, however busy.
    pub session_max_hours: u32,
    /// A message shown on every page (maintenance, course news).
    pub banner: Option<String>,
    /// Behind a reverse proxy: take the client address from the last entry
    /// of `X-Forwarded-For` (rate limits are per client address).
    pub trust_forwarded_for: bool,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// When set, each user's Jupyter is served at `<login>.<user_domain>`
    /// (its own origin) instead of under `public_url`.
    pub user_domain: Option<String>,
    /// The URL the VMs report their progress to; unset: `public_url`. With
    /// the Jupyter proxy the VMs are on a private network, so this can be
    /// the server's address there.
    pub callback_url: Option<Url>,
}

impl ServerConfig {
    /// Where the VMs send their callbacks.
    pub fn callback_base(&self) -> &Url {
        self.callback_url.as_ref().unwrap_or(&self.public_url)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://127.0.0.1:8080").expect("valid URL"),
            session_idle_minutes: 8 * 60,
            session_max_hours: 24,
            banner: None,
            trust_forwarded_for: false,
            metrics_token: None,
            user_domain: None,
            callback_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db`
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://stackbinder.db".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub api_url: Url,
    /// How long one request to GitHub may take.
    pub timeout_seconds: u64,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            authorize_url: Url::parse("https://github.com/login/oauth/authorize").expect("valid"),
            token_url: Url::parse("https://github.com/login/oauth/access_token").expect("valid"),
            api_url: Url::parse("https://api.github.com").expect("valid"),
            timeout_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// The secret in `/register/{secret}`.
    pub secret: Option<SecretString>,
    pub secret_file: Option<PathBuf>,
    /// GitHub accounts that are always allowed and see /admin: `id:1234`
    /// or a login, which is tied to the account that first logs in with
    /// it (GitHub lets anyone take a login its owner renamed away from).
    pub admins: Vec<GithubUser>,
    /// Also allowed without a link: members of these GitHub organizations
    /// (`org`) or teams (`org/team`). Asks GitHub for `read:org`.
    pub allowed_orgs: Vec<OrgOrTeam>,
    /// Refused everywhere, whatever else says; written like `admins`, so
    /// a rename does not get a blocked account back in.
    pub blocked_users: Vec<GithubUser>,
    /// Wrong registration secrets one client may try per `guess_window_minutes`.
    pub wrong_guesses: u32,
    pub guess_window_minutes: u32,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            admins: Vec::new(),
            allowed_orgs: Vec::new(),
            blocked_users: Vec::new(),
            wrong_guesses: 10,
            guess_window_minutes: 10,
        }
    }
}

/// A GitHub account in `registration.admins` or `blocked_users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GithubUser {
    /// `id:1234`: GitHub's numeric user id, which never changes.
    Id(GithubId),
    /// A login, resolved to an id at its first login (see `crate::access`).
    Login(Login),
}

impl From<Login> for GithubUser {
    fn from(login: Login) -> Self {
        Self::Login(login)
    }
}

impl std::str::FromStr for GithubUser {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().strip_prefix("id:") {
            Some(id) => match id.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(Self::Id(GithubId(n))),
                _ => Err(format!(
                    "{raw:?}: a GitHub id is a positive number, e.g. id:583231"
                )),
            },
            None => Login::parse(raw)
                .map(Self::Login)
                .map_err(|e| format!("{raw:?}: {e}")),
        }
    }
}

impl<'de> Deserialize<'de> for GithubUser {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `org` or `org/team` (team by its slug).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgOrTeam {
    pub org: Login,
    pub team: Option<String>,
}

impl<'de> Deserialize<'de> for OrgOrTeam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let (org, team) = match raw.split_once('/') {
            Some((org, team)) => (org, Some(team)),
            None => (raw.as_str(), None),
        };
        let org =
            Login::parse(org).map_err(|e| serde::de::Error::custom(format!("{raw:?}: {e}")))?;
        if let Some(team) = team
            && (team.is_empty()
                || !team
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(serde::de::Error::custom(format!(
                "{raw:?}: a team is written org/team-slug"
            )));
        }
        Ok(Self {
            org,
            team: team.map(str::to_owned),
        })
    }
}

/// Which cloud stackbinder drives. OpenStack unless the simulated cloud is
/// asked for by name: an operator who fills in `[cloud]` and forgets this
/// key must not get VMs that do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An in-process cloud that behaves like Nova (`demo`, and tests).
    Simulated,
    /// A real OpenStack cloud (Keystone, Nova, Cinder, Neutron, Glance).
    #[default]
    Openstack,
}

/// How users reach the Jupyter server on their VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JupyterAccess {
    /// Through stackbinder's proxy at `/user/<login>/`, to the VM's fixed
    /// address: VMs get no floating IP.
    #[default]
    Proxy,
    /// Straight to a floating IP on each VM, for a server that cannot reach
    /// the tenant network.
    FloatingIp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    pub backend: Backend,
    /// Proxied (no floating IPs) or straight to a floating IP per VM.
    pub jupyter_access: JupyterAccess,
    /// Entry in clouds.yaml; empty means the `OS_*` environment.
    pub cloud: String,
    pub image: String,
    pub flavor: String,
    pub volume_size_gb: u32,
    pub delete_volume_on_termination: bool,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    pub network: Option<String>,
    pub floating_ip_pool: Option<String>,
    pub release_floating_ip: bool,
    pub name_prefix: String,
    /// At most this many VMs at once; 0 pauses launches (maintenance);
    /// unset means no limit but the cloud's quota.
    pub max_vms: Option<u32>,
    /// Region to use; unset: the one of clouds.yaml / `OS_REGION_NAME`.
    pub region: Option<String>,
    /// Endpoint interface (public, internal, admin); unset: as configured
    /// in clouds.yaml / `OS_INTERFACE`, else public.
    pub interface: Option<String>,
    /// Every OpenStack API call gives up after this long.
    pub request_timeout_seconds: u64,
    /// At most this many OpenStack API calls in flight at once.
    pub max_concurrent_requests: usize,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            jupyter_access: JupyterAccess::Proxy,
            cloud: String::new(),
            image: "stackbinder-snapshot".into(),
            flavor: "m1.large".into(),
            volume_size_gb: 150,
            delete_volume_on_termination: true,
            key_name: None,
            security_groups: vec!["ssh-whitelist".into(), "Open-top".into()],
            network: None,
            floating_ip_pool: None,
            release_floating_ip: true,
            name_prefix: String::new(),
            max_vms: None,
            region: None,
            interface: None,
            request_timeout_seconds: 30,
            max_concurrent_requests: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaunchConfig {
    /// Launched when a link has no `giturl`.
    #[serde(deserialize_with = "repo_spec")]
    pub default_repo: RepoSpec,
    /// The port Jupyter listens on inside the VM.
    pub jupyter_port: u16,
    pub boot_timeout_seconds: u64,
    pub clone_timeout_seconds: u64,
    pub build_timeout_seconds: u64,
    pub start_timeout_seconds: u64,
    /// A VM is deleted this long after its launch (plus extensions).
    pub max_lifetime_hours: f64,
    /// How many times the owner may push the expiry back...
    pub max_extensions: u32,
    /// ...and by how much each time.
    pub extension_hours: f64,
    /// A ready VM whose Jupyter saw no activity for this long is deleted;
    /// 0 turns idle culling off.
    pub idle_timeout_minutes: u32,
    /// A launch waiting for a free slot fails after this long.
    pub queue_timeout_minutes: u32,
    /// At most this many VMs at once of a repository (workshops).
    pub repo_caps: std::collections::BTreeMap<String, u32>,
    /// The hosts repositories may come from (lower-case host names); empty:
    /// any host.
    pub allowed_hosts: Vec<String>,
    /// Repositories that may not be launched: URL globs (`*` is any run of
    /// characters), BinderHub's `banned_specs`.
    #[serde(deserialize_with = "repo_patterns")]
    pub banned_repos: Vec<RepoPattern>,
}

impl LaunchConfig {
    /// Whether this server launches `repo`; if not, why, for its user.
    pub fn permits(&self, repo: &RepoSpec) -> Result<(), String> {
        repo_policy::check(repo, &self.allowed_hosts, &self.banned_repos)
    }
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            default_repo: RepoSpec::parse("https://github.com/binder-examples/requirements")
                .expect("valid"),
            jupyter_port: 8888,
            boot_timeout_seconds: 600,
            clone_timeout_seconds: 600,
            build_timeout_seconds: 3600,
            start_timeout_seconds: 300,
            max_lifetime_hours: 8.0,
            max_extensions: 2,
            extension_hours: 4.0,
            idle_timeout_minutes: 60,
            queue_timeout_minutes: 30,
            repo_caps: Default::default(),
            allowed_hosts: Vec::new(),
            banned_repos: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionConfig {
    /// How often the background driver looks at unfinished VMs.
    pub poll_interval_ms: u64,
    /// The most VMs the driver moves forward at the same time; fewer while
    /// the cloud answers slowly or asks to slow down (`provision::concurrency`).
    pub concurrency: usize,
    /// How often the store is compared with what the cloud really has.
    pub reconcile_interval_seconds: u64,
    /// Something of ours in the cloud without a record is deleted once it
    /// has been seen for this long (a launch may be about to record it).
    pub orphan_grace_minutes: u64,
    /// How often a ready VM's Jupyter is asked for its last activity.
    pub idle_check_seconds: u64,
    /// A stalled deletion is asked for again this often...
    pub delete_retry_seconds: u64,
    /// ...and fails (to be retried at its expiry) after this long.
    pub delete_give_up_seconds: u64,
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 2000,
            concurrency: 8,
            reconcile_interval_seconds: 300,
            orphan_grace_minutes: 15,
            idle_check_seconds: 300,
            delete_retry_seconds: 600,
            delete_give_up_seconds: 3600,
        }
    }
}

/// Timings of the simulated cloud (`cloud.backend = "simulated"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub boot_seconds: f64,
    pub clone_seconds: f64,
    pub build_seconds: f64,
    pub start_seconds: f64,
    pub delete_seconds: f64,
    /// The command of a real JupyterLab the simulated VM runs instead of
    /// its built-in stand-in, e.g. `["/venv/bin/python", "-m", "jupyterlab"]`
    /// (it is given what `launch.sh` gives Jupyter in the container);
    /// empty: the stand-in.
    pub jupyter_command: Vec<String>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            boot_seconds: 3.0,
            clone_seconds: 2.0,
            build_seconds: 6.0,
            start_seconds: 2.0,
            delete_seconds: 2.0,
            jupyter_command: Vec::new(),
        }
    }
}

/// The snapshot image every VM boots from: what the image build puts in it
/// (`cloud-init/base-image.yaml`, rendered by `cloud_init::render_base_image`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Repositories built once into the image to warm Docker's layer cache.
    #[serde(deserialize_with = "repo_specs")]
    pub prebuild: Vec<RepoSpec>,
    /// MTU of Docker's networks: below the cloud network's, or builds hang.
    pub docker_mtu: u16,
    /// The jupyter-repo2docker release installed from PyPI.
    pub repo2docker_version: String,
    /// The stock image `stackbinder image build` boots (name or id).
    pub base_image: String,
    /// The flavor of the builder VM; its root disk holds the whole image.
    pub builder_flavor: String,
    /// The builder must power off within this long.
    pub build_timeout_minutes: u64,
    /// The snapshot must be active in Glance within this long.
    pub snapshot_timeout_minutes: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            prebuild: vec![LaunchConfig::default().default_repo],
            docker_mtu: 1400,
            repo2docker_version: "2026.4.0".into(),
            base_image: "ubuntu-24.04".into(),
            builder_flavor: "m1.large".into(),
            build_timeout_minutes: 90,
            snapshot_timeout_minutes: 60,
        }
    }
}

fn repo_specs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RepoSpec>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| RepoSpec::parse(raw).map_err(serde::de::Error::custom))
        .collect()
}

fn repo_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RepoPattern>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| RepoPattern::parse(raw).map_err(serde::de::Error::custom))
        .collect()
}

fn repo_spec<'de, D: Deserializer<'de>>(d: D) -> Result<RepoSpec, D::Error> {
    let raw = String::deserialize(d)?;
    RepoSpec::parse(&raw).map_err(serde::de::Error::custom)
}

/// A configuration problem, said so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration key `{}`: {}\n  fix: {}",
            self.key, self.problem, self.fix
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Secrets resolved from their value or file, kept apart from `Config` so
/// that the raw settings can be shown without them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub github_client_secret: Option<SecretString>,
    pub registration_secret: Option<SecretString>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

impl Config {
    /// Load `path` (if given) and the environment, then validate.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} does not exist", path.display()),
                    "give the path of a config.toml (see config.toml in the repository)",
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Self::from_figment(
            figment.merge(
                Env::prefixed("STACKBINDER_")
                    .ignore(&["CONFIG"])
                    .split("__"),
            ),
        )
    }

    /// Defaults and the environment only (the demo needs no file).
    pub fn defaults() -> Self {
        Self::from_figment(Figment::new()).expect("the defaults are valid")
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(from_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let public = &self.server.public_url;
        if !matches!(public.scheme(), "http" | "https") || public.host_str().is_none() {
            return Err(ConfigError::new(
                "server.public_url",
                format!("{public} is not an http(s) URL"),
                "set it to the address users open, e.g. https://binder.example.org",
            ));
        }
        if let Some(domain) = &self.server.user_domain {
            let labels_ok = domain.split('.').count() >= 2
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if !labels_ok || public.host_str() == Some(domain.as_str()) {
                return Err(ConfigError::new(
                    "server.user_domain",
                    format!("{domain:?} is not a domain for the users' hosts"),
                    "write the lower-case domain under which <login>.<domain> points at this server \
                     (a wildcard DNS entry and certificate), e.g. \"nb.example.org\", not public_url's host",
                ));
            }
        }
        if let Some(callback) = &self.server.callback_url
            && (!matches!(callback.scheme(), "http" | "https") || callback.host_str().is_none())
        {
            return Err(ConfigError::new(
                "server.callback_url",
                format!("{callback} is not an http(s) URL"),
                "set it to the address the VMs reach this server at, e.g. http://10.0.0.5:8080, or leave it unset for server.public_url",
            ));
        }
        if !self.database.url.starts_with("sqlite:") {
            return Err(ConfigError::new(
                "database.url",
                format!("{:?} is not a SQLite URL", self.database.url),
                "use sqlite://path/to/stackbinder.db",
            ));
        }
        let prefix_ok = self
            .cloud
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !prefix_ok || self.cloud.name_prefix.len() > 20 {
            return Err(ConfigError::new(
                "cloud.name_prefix",
                format!(
                    "{:?} is not usable in a server name",
                    self.cloud.name_prefix
                ),
                "use up to 20 letters, digits, - or _ (e.g. \"binder-\")",
            ));
        }
        if self.cloud.volume_size_gb == 0 {
            return Err(ConfigError::new(
                "cloud.volume_size_gb",
                "0 GB cannot hold the image",
                "set it to the boot volume size in GB, e.g. 150",
            ));
        }
        if let Some(interface) = &self.cloud.interface
            && !matches!(interface.as_str(), "public" | "internal" | "admin")
        {
            return Err(ConfigError::new(
                "cloud.interface",
                format!("{interface:?} is not an endpoint interface"),
                "use \"public\", \"internal\" or \"admin\", or leave it unset",
            ));
        }
        if self.cloud.request_timeout_seconds == 0 || self.cloud.max_concurrent_requests == 0 {
            return Err(ConfigError::new(
                "cloud.request_timeout_seconds",
                "the request timeout and max_concurrent_requests must be positive",
                "use e.g. request_timeout_seconds = 30 and max_concurrent_requests = 8",
            ));
        }
        if self.server.session_idle_minutes == 0 || self.server.session_max_hours == 0 {
            return Err(ConfigError::new(
                "server.session_idle_minutes",
                "sessions must last at least a minute",
                "use a positive number of minutes / hours",
            ));
        }
        let launch = &self.launch;
        if !(launch.max_lifetime_hours > 0.0 && launch.extension_hours >= 0.0) {
            return Err(ConfigError::new(
                "launch.max_lifetime_hours",
                "the lifetime must be positive (and extensions not negative)",
                "use e.g. max_lifetime_hours = 8 and extension_hours = 4",
            ));
        }
        for repo in launch.repo_caps.keys() {
            if let Err(problem) = RepoSpec::parse(repo) {
                return Err(ConfigError::new(
                    "launch.repo_caps",
                    format!("{repo:?}: {problem}"),
                    "use the repository URLs exactly as users launch them",
                ));
            }
        }
        if let Some(host) = launch.allowed_hosts.iter().find(|h| {
            h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        }) {
            return Err(ConfigError::new(
                "launch.allowed_hosts",
                format!("{host:?} is not a host name"),
                "list lower-case host names, e.g. [\"github.com\", \"gitlab.com\"], or leave it empty for any host",
            ));
        }
        if let Err(problem) = launch.permits(&launch.default_repo) {
            return Err(ConfigError::new(
                "launch.default_repo",
                format!("{}: {problem}", launch.default_repo),
                "choose a default repository that launch.allowed_hosts and launch.banned_repos let through",
            ));
        }
        if self.registration.wrong_guesses == 0 || self.registration.guess_window_minutes == 0 {
            return Err(ConfigError::new(
                "registration.wrong_guesses",
                "the limit and its window must be positive",
                "use e.g. wrong_guesses = 10 and guess_window_minutes = 10",
            ));
        }
        if self.github.timeout_seconds == 0 {
            return Err(ConfigError::new(
                "github.timeout_seconds",
                "0 seconds leaves no time for GitHub to answer",
                "use e.g. 10",
            ));
        }
        if self.provision.poll_interval_ms == 0 || self.provision.concurrency == 0 {
            return Err(ConfigError::new(
                "provision.poll_interval_ms",
                "the poll interval and concurrency must be positive",
                "use e.g. poll_interval_ms = 2000 and concurrency = 8",
            ));
        }
        if !(576..=9000).contains(&self.image.docker_mtu) {
            return Err(ConfigError::new(
                "image.docker_mtu",
                format!("{} is not a usable MTU", self.image.docker_mtu),
                "use the cloud network's MTU minus its overhead, e.g. 1400 (576 to 9000)",
            ));
        }
        let version = &self.image.repo2docker_version;
        let version_ok = !version.is_empty()
            && version.len() <= 40
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-'));
        if !version_ok {
            return Err(ConfigError::new(
                "image.repo2docker_version",
                format!("{version:?} is not a release number"),
                "write a jupyter-repo2docker release from PyPI, e.g. \"2026.4.0\"",
            ));
        }
        if self.image.base_image.trim().is_empty() || self.image.builder_flavor.trim().is_empty() {
            return Err(ConfigError::new(
                "image.base_image",
                "the image build needs a base image and a builder flavor",
                "set image.base_image to a stock Ubuntu 24.04 image and image.builder_flavor to a flavor with a root disk",
            ));
        }
        if self.image.build_timeout_minutes == 0 || self.image.snapshot_timeout_minutes == 0 {
            return Err(ConfigError::new(
                "image.build_timeout_minutes",
                "the build and snapshot timeouts must be positive",
                "use e.g. build_timeout_minutes = 90 and snapshot_timeout_minutes = 60",
            ));
        }
        self.secrets().map(|_| ())
    }

    /// Read the secrets from their values or files.
    pub fn secrets(&self) -> Result<Secrets, ConfigError> {
        Ok(Secrets {
            github_client_secret: secret_from(
                "github.client_secret",
                &self.github.client_secret,
                &self.github.client_secret_file,
            )?,
            registration_secret: secret_from(
                "registration.secret",
                &self.registration.secret,
                &self.registration.secret_file,
            )?,
        })
    }
}

fn secret_from(
    key: &str,
    value: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    use secrecy::ExposeSecret;
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            "both the value and the _file variant are set",
            format!("keep only one of `{key}` and `{key}_file`"),
        )),
        (Some(v), None) if v.expose_secret().trim().is_empty() => Ok(None),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    &format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                    "point it at a readable file that holds only the secret",
                )
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(ConfigError::new(
                    &format!("{key}_file"),
                    format!("{} is empty", path.display()),
                    "write the secret into the file",
                ));
            }
            Ok(Some(SecretString::from(text.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

fn from_figment_error(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        "(top level)".to_owned()
    } else {
        err.path.join(".").to_lowercase()
    };
    let problem = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => format!("`{field}` is not a known key"),
        kind => kind.to_string(),
    };
    let fix = fix_for(&key, &err.kind);
    ConfigError { key, problem, fix }
}

fn fix_for(key: &str, kind: &figment::error::Kind) -> String {
    // A list entry's key ends in its index (`registration.admins.0`).
    let key = key
        .rsplit_once('.')
        .filter(|(_, last)| last.parse::<usize>().is_ok())
        .map_or(key, |(list, _)| list);
    if matches!(kind, figment::error::Kind::UnknownField(..)) {
        return "check the spelling against the documented config.toml".into();
    }
    match key {
        "server.bind" => "write host:port, e.g. \"127.0.0.1:8080\"".into(),
        "server.public_url"
        | "server.callback_url"
        | "github.authorize_url"
        | "github.token_url"
        | "github.api_url" => "write a full URL, e.g. \"https://binder.example.org\"".into(),
        "launch.default_repo" => {
            "write an https git URL, e.g. \"https://github.com/binder-examples/requirements\""
                .into()
        }
        "cloud.backend" => "use \"simulated\" or \"openstack\"".into(),
        "cloud.jupyter_access" => "use \"proxy\" or \"floating_ip\"".into(),
        "registration.admins" | "registration.blocked_users" => {
            "list GitHub logins or ids, e.g. [\"octocat\", \"id:583231\"]".into()
        }
        "registration.allowed_orgs" => {
            "list organizations or org/team slugs, e.g. [\"my-org\", \"my-org/tutors\"]".into()
        }
        "launch.banned_repos" => {
            "list https URL patterns with * wildcards, e.g. [\"https://github.com/some-org/*\"]"
                .into()
        }
        "image.prebuild" => {
            "list https git URLs, e.g. [\"https://github.com/binder-examples/requirements\"]".into()
        }
        _ => "see the comment for this key in config.toml".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let c = load_str(include_str!("../config.toml")).expect("config.toml loads");
        assert_eq!(c.cloud.volume_size_gb, 150);
        let defaults = ImageConfig::default();
        assert_eq!(c.image.prebuild, defaults.prebuild);
        assert_eq!(c.image.docker_mtu, defaults.docker_mtu);
        assert_eq!(c.image.repo2docker_version, defaults.repo2docker_version);
        assert_eq!(c.image.base_image, defaults.base_image);
        assert_eq!(c.image.builder_flavor, defaults.builder_flavor);
        assert_eq!(c.image.build_timeout_minutes, 90);
        assert_eq!(c.image.snapshot_timeout_minutes, 60);
    }

    #[test]
    fn the_image_build_needs_a_base_image_and_positive_timeouts() {
        let e = load_str("[image]\nbuild_timeout_minutes = 0").unwrap_err();
        assert_eq!(e.key, "image.build_timeout_minutes");
        let e = load_str("[image]\nbase_image = \"\"").unwrap_err();
        assert_eq!(e.key, "image.base_image");
        let c = load_str("[image]\nbuilder_flavor = \"m1.xlarge\"").unwrap();
        assert_eq!(c.image.builder_flavor, "m1.xlarge");
    }

    #[test]
    fn a_user_domain_is_a_lower_case_domain_other_than_the_public_host() {
        let c = load_str("[server]\nuser_domain = \"nb.example.org\"").unwrap();
        assert_eq!(c.server.user_domain.as_deref(), Some("nb.example.org"));
        for bad in [
            "NB.example.org",
            "org",
            "nb..example.org",
            "-nb.example.org",
            "*.nb.example.org",
            "127.0.0.1:8080",
        ] {
            let e = load_str(&format!("[server]\nuser_domain = \"{bad}\"")).unwrap_err();
            assert_eq!(e.key, "server.user_domain", "{bad}");
        }
        let e = load_str(
            "[server]\npublic_url = \"https://binder.example.org\"\nuser_domain = \"binder.example.org\"",
        )
        .unwrap_err();
        assert_eq!(e.key, "server.user_domain");
    }

    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    #[test]
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STACKBINDER_CLOUD__FLAVOR", "m1.xlarge");
            jail.set_env("STACKBINDER_SERVER__BIND", "127.0.0.1:9999");
            jail.create_file("c.toml", "[cloud]\nflavor = \"m1.small\"")?;
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.cloud.flavor, "m1.xlarge");
            assert_eq!(c.server.bind.port(), 9999);
            Ok(())
        });
    }

    #[allow(clippy::result_large_err)]
    #[test]
    fn secrets_can_come_from_a_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("secret", "s3cret-from-file\n")?;
            jail.set_env("STACKBINDER_REGISTRATION__SECRET_FILE", "secret");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            let secret = c
                .secrets()
                .map_err(|e| e.to_string())?
                .registration_secret
                .unwrap();
            assert_eq!(
                secrecy::ExposeSecret::expose_secret(&secret),
                "s3cret-from-file"
            );
            Ok(())
        });
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = load_str("").unwrap();
        assert_eq!(c.cloud.volume_size_gb, 150);
        assert_eq!(c.cloud.security_groups, ["ssh-whitelist", "Open-top"]);
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_fix() {
        let e = load_str("[server]\nbind = \"nonsense\"").unwrap_err();
        assert_eq!(e.key, "server.bind");
        assert!(e.fix.contains("host:port"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let e = load_str("[cloud]\nflavour = \"x\"").unwrap_err();
        assert_eq!(e.key, "cloud.flavour");
        assert!(e.problem.contains("not a known key"), "{e}");
    }

    #[test]
    fn a_bad_default_repo_explains_itself() {
        let e = load_str("[launch]\ndefault_repo = \"git@github.com:a/b\"").unwrap_err();
        assert_eq!(e.key, "launch.default_repo");
    }

    #[test]
    fn the_image_section_has_the_old_tools_mtu_and_a_pinned_repo2docker() {
        let c = load_str("").unwrap();
        assert_eq!(c.image.docker_mtu, 1400);
        assert_eq!(c.image.prebuild, [c.launch.default_repo]);
        assert!(!c.image.repo2docker_version.is_empty());
    }

    #[test]
    fn bad_image_settings_name_the_key() {
        for (toml, key) in [
            (
                "[image]\nprebuild = [\"git@github.com:a/b\"]",
                "image.prebuild",
            ),
            ("[image]\ndocker_mtu = 100", "image.docker_mtu"),
            ("[image]\ndocker_mtu = 70000", "image.docker_mtu"),
            (
                "[image]\nrepo2docker_version = \"1.0; reboot\"",
                "image.repo2docker_version",
            ),
            (
                "[image]\nrepo2docker_version = \"\"",
                "image.repo2docker_version",
            ),
        ] {
            assert_eq!(load_str(toml).unwrap_err().key, key, "{toml}");
        }
    }

    #[test]
    fn admins_and_blocked_users_take_ids_or_logins() {
        let c = load_str(
            "[registration]\nadmins = [\"id:583231\", \"Octocat\"]\nblocked_users = [\"id:7\"]",
        )
        .unwrap();
        assert_eq!(
            c.registration.admins,
            [
                GithubUser::Id(GithubId(583231)),
                GithubUser::Login(Login::parse("Octocat").unwrap())
            ]
        );
        assert_eq!(c.registration.blocked_users, [GithubUser::Id(GithubId(7))]);
        for bad in ["id:", "id:-3", "id:12x", "not a login"] {
            let e = load_str(&format!("[registration]\nadmins = [\"{bad}\"]")).unwrap_err();
            assert_eq!(e.key, "registration.admins.0", "{bad}");
            assert!(e.fix.contains("id:583231"), "{bad}: {}", e.fix);
        }
    }

    #[test]
    fn a_secret_and_its_file_cannot_both_be_set() {
        let e = load_str("[registration]\nsecret = \"abc\"\nsecret_file = \"/x\"").unwrap_err();
        assert_eq!(e.key, "registration.secret");
    }

    #[test]
    fn the_openstack_backend_and_its_keys_are_understood() {
        let c = load_str(
            "[cloud]\nbackend = \"openstack\"\ncloud = \"mycloud\"\nregion = \"RegionTwo\"\ninterface = \"internal\"\nrequest_timeout_seconds = 10\n",
        )
        .unwrap();
        assert_eq!(c.cloud.backend, Backend::Openstack);
        assert_eq!(c.cloud.region.as_deref(), Some("RegionTwo"));
        assert_eq!(c.cloud.request_timeout_seconds, 10);
        let e = load_str("[cloud]\ninterface = \"private\"").unwrap_err();
        assert_eq!(e.key, "cloud.interface");
        let e = load_str("[cloud]\nbackend = \"aws\"").unwrap_err();
        assert!(e.fix.contains("openstack"), "{e}");
    }

    #[test]
    fn allowed_hosts_and_banned_repos_are_checked_at_start() {
        let c = load_str(
            "[launch]\nallowed_hosts = [\"github.com\"]\nbanned_repos = [\"https://github.com/evil/*\"]",
        )
        .unwrap();
        assert_eq!(c.launch.allowed_hosts, ["github.com"]);
        assert_eq!(
            c.launch.banned_repos[0].as_str(),
            "https://github.com/evil/*"
        );
        let e = load_str("[launch]\nbanned_repos = [\"^evil.*\"]").unwrap_err();
        assert_eq!(e.key, "launch.banned_repos");
        assert!(e.fix.contains("wildcards"), "{e}");
        let e = load_str("[launch]\nallowed_hosts = [\"https://github.com\"]").unwrap_err();
        assert_eq!(e.key, "launch.allowed_hosts");
        let e = load_str("[launch]\nallowed_hosts = [\"gitlab.com\"]").unwrap_err();
        assert_eq!(
            e.key, "launch.default_repo",
            "the default must be launchable: {e}"
        );
    }

    #[test]
    fn serve_defaults_to_the_openstack_backend() {
        assert_eq!(load_str("").unwrap().cloud.backend, Backend::Openstack);
        let c = load_str("[cloud]\nbackend = \"simulated\"").unwrap();
        assert_eq!(c.cloud.backend, Backend::Simulated);
    }

    #[test]
    fn jupyter_access_defaults_to_the_proxy_and_takes_floating_ip() {
        let c = load_str("").unwrap();
        assert_eq!(c.cloud.jupyter_access, JupyterAccess::Proxy);
        let c = load_str("[cloud]\njupyter_access = \"floating_ip\"").unwrap();
        assert_eq!(c.cloud.jupyter_access, JupyterAccess::FloatingIp);
        let e = load_str("[cloud]\njupyter_access = \"vpn\"").unwrap_err();
        assert_eq!(e.key, "cloud.jupyter_access");
        assert!(e.fix.contains("floating_ip"), "{e}");
    }

    #[test]
    fn the_callback_url_defaults_to_the_public_url() {
        let c = load_str("[server]\npublic_url = \"https://binder.example.org\"").unwrap();
        assert_eq!(
            c.server.callback_base().as_str(),
            "https://binder.example.org/"
        );
        let c = load_str("[server]\ncallback_url = \"http://10.0.0.5:8080\"").unwrap();
        assert_eq!(c.server.callback_base().as_str(), "http://10.0.0.5:8080/");
        let e = load_str("[server]\ncallback_url = \"ftp://10.0.0.5\"").unwrap_err();
        assert_eq!(e.key, "server.callback_url");
    }

    #[test]
    fn the_simulator_runs_its_stand_in_unless_given_a_jupyter_command() {
        let c = load_str("").unwrap();
        assert!(c.simulator.jupyter_command.is_empty());
        let c = load_str("[simulator]\njupyter_command = [\"python3\", \"-m\", \"jupyterlab\"]")
            .unwrap();
        assert_eq!(c.simulator.jupyter_command, ["python3", "-m", "jupyterlab"]);
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = load_str("[registration]\nsecret = \"hunter2-hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.secrets().unwrap()).contains("hunter2"));
    }
}
