//! Credentials the OpenStack way, and the one authenticated session that
//! every request shares.
//!
//! Why `osauth` and not the `openstack` crate on top of it: `openstack` 0.6
//! cannot send security groups with a server create (`NewServer` has no
//! field for them, and the old tool always set `ssh-whitelist` and
//! `Open-top`), has no limits or quota calls, cannot list servers with their
//! metadata, and looks names up again (extra calls) on every create. Every
//! call stackbinder makes would go through its `Session` anyway, so we use
//! that session (`osauth`, same maintainer) directly and keep one client.
//! `osauth` does the generic parts: clouds.yaml and `OS_*` loading,
//! password and application-credential auth, the service catalog with
//! region and interface, and one cached token renewed before it expires.

use super::errors::{ApiError, ApiErrorKind};
use osauth::services::ServiceType;
use osauth::{CloudConfig, ErrorKind, InterfaceType, Session};
use std::path::PathBuf;
use std::str::FromStr;

/// Where the credentials come from.
#[derive(Clone)]
pub enum Credentials {
    /// An entry of clouds.yaml on the standard search path
    /// (./clouds.yaml, ~/.config/openstack/, /etc/openstack/).
    Named(String),
    /// An entry of this clouds.yaml (`OS_CLIENT_CONFIG_FILE`, tests).
    File { path: PathBuf, cloud: String },
    /// The `OS_*` variables of an RC file (or `OS_CLOUD`).
    Environment,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(cloud) => write!(f, "clouds.yaml entry {cloud:?}"),
            Self::File { path, cloud } => write!(f, "entry {cloud:?} of {}", path.display()),
            Self::Environment => f.write_str("OS_* environment"),
        }
    }
}

impl Credentials {
    /// What `cloud.cloud` (empty: the environment) means, honouring
    /// `OS_CLIENT_CONFIG_FILE` as the OpenStack client does.
    pub fn from_setting(cloud: &str) -> Self {
        let file = std::env::var_os("OS_CLIENT_CONFIG_FILE").map(PathBuf::from);
        let name = if cloud.is_empty() {
            std::env::var("OS_CLOUD").ok().filter(|c| !c.is_empty())
        } else {
            Some(cloud.to_owned())
        };
        match (name, file) {
            (Some(cloud), Some(path)) => Self::File { path, cloud },
            (Some(cloud), None) => Self::Named(cloud),
            (None, _) => Self::Environment,
        }
    }

    fn load(&self) -> Result<CloudConfig, ApiError> {
        let what = "read the OpenStack credentials";
        let config = match self {
            Self::Named(cloud) => CloudConfig::from_config(cloud),
            Self::Environment => CloudConfig::from_env(),
            Self::File { path, cloud } => return load_file(path, cloud),
        };
        config.map_err(|e| {
            ApiError::new(
                what,
                ApiErrorKind::Credentials,
                format!("{self:?}: {}", osauth_message(&e)),
            )
        })
    }
}

/// One entry of a given clouds.yaml.
fn load_file(path: &std::path::Path, cloud: &str) -> Result<CloudConfig, ApiError> {
    let fail = |detail: String| {
        ApiError::new(
            "read the OpenStack credentials",
            ApiErrorKind::Credentials,
            detail,
        )
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let root: serde_json::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| fail(format!("{} is not YAML: {e}", path.display())))?;
    let entry = root
        .get("clouds")
        .and_then(|c| c.get(cloud))
        .ok_or_else(|| fail(format!("{} has no cloud named {cloud:?}", path.display())))?;
    serde_json::from_value(entry.clone())
        .map_err(|e| fail(format!("entry {cloud:?} of {}: {e}", path.display())))
}

/// osauth's message, which never holds the password or token.
fn osauth_message(e: &osauth::Error) -> String {
    e.to_string()
}

/// A catalog service whose catalog URL is already versioned (Nova's
/// `/v2.1`, Cinder's `/v3/<project>`, Keystone): no version discovery, so
/// no extra call, and Cinder's project id stays in the URL.
#[derive(Debug, Clone, Copy)]
pub struct Catalog(pub &'static str);

impl ServiceType for Catalog {
    fn catalog_type(&self) -> &'static str {
        self.0
    }

    fn version_discovery_supported(&self) -> bool {
        false
    }
}

pub const COMPUTE: Catalog = Catalog("compute");
pub const IDENTITY: Catalog = Catalog("identity");
/// Cinder is `block-storage` in current catalogs, `volumev3` in older ones.
const VOLUME_TYPES: [Catalog; 2] = [Catalog("block-storage"), Catalog("volumev3")];

/// The Nova microversion we speak. From 2.37 on a server create must name
/// its network, which we always do; from 2.69 (Train) a server in a cell
/// that is down is listed and shown with status UNKNOWN and partial
/// fields, where older microversions leave it out of lists silently: a
/// live VM would look gone (issue #10).
pub const NOVA_MICROVERSION: &str = "compute 2.69";

/// An authenticated session and what we learnt from its catalog.
pub struct Ready {
    pub session: Session,
    pub volume: Catalog,
}

/// Authenticate (the first and, until the token nears its expiry, only
/// call to Keystone) and pick region and interface.
pub async fn connect(
    credentials: &Credentials,
    region: Option<&str>,
    interface: Option<&str>,
) -> Result<Ready, ApiError> {
    let config = credentials.load()?;
    let mut session = config.create_session().await.map_err(|e| {
        let kind = match e.kind() {
            ErrorKind::ProtocolError => ApiErrorKind::Transport,
            ErrorKind::InternalServerError => ApiErrorKind::Transport,
            _ => ApiErrorKind::Credentials,
        };
        ApiError::new("authenticate with Keystone", kind, osauth_message(&e))
    })?;
    if let Some(region) = region {
        session.set_region(region);
    }
    if let Some(interface) = interface {
        let parsed = InterfaceType::from_str(interface).map_err(|e| {
            ApiError::new(
                "use cloud.interface",
                ApiErrorKind::Credentials,
                osauth_message(&e),
            )
        })?;
        session.set_endpoint_interface(parsed);
    }
    let mut volume = None;
    for candidate in VOLUME_TYPES {
        // With discovery off this reads the cached catalog: no API call.
        if session.get_endpoint(candidate, [""; 0]).await.is_ok() {
            volume = Some(candidate);
            break;
        }
    }
    let volume = volume.ok_or_else(|| {
        ApiError::new(
            "find Cinder in the service catalog",
            ApiErrorKind::BadAnswer,
            "the catalog has no block-storage (or volumev3) endpoint for this region and interface",
        )
    })?;
    for (service, name) in [(COMPUTE, "compute (Nova)")] {
        session.get_endpoint(service, [""; 0]).await.map_err(|_| {
            ApiError::new(
                "find Nova in the service catalog",
                ApiErrorKind::BadAnswer,
                format!("the catalog has no {name} endpoint for this region and interface"),
            )
        })?;
    }
    Ok(Ready { session, volume })
}

/// The current token, read back from the auth plugin (which refreshes it
/// first if it is about to expire), for Keystone's token introspection.
pub async fn current_token(session: &Session) -> Result<secrecy::SecretString, ApiError> {
    let client = session.client();
    let probe = client.inner().get("http://token.invalid/");
    let fail = |d: String| ApiError::new("read the token", ApiErrorKind::Credentials, d);
    let request = client
        .auth_type()
        .authenticate(client.inner(), probe)
        .await
        .map_err(|e| fail(osauth_message(&e)))?
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let token = request
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| fail("the auth plugin gave no token".into()))?;
    Ok(secrecy::SecretString::from(token.to_owned()))
}
