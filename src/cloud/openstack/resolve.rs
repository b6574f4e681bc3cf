//! Names in the configuration (image, flavor, network, security groups,
//! key pair, floating IP pool) turned into ids, once: the first launch (or
//! `check`) looks them up, every later launch reuses the answer.

mod networks;

pub use networks::{Network, Networks, pick_network, pick_pool};

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use super::session::{COMPUTE, IDENTITY};
use crate::cloud::CloudError;
use osauth::services::{IMAGE, NETWORK};
use serde::Deserialize;

/// What a launch needs, by id.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub image_id: String,
    pub flavor: Flavor,
    pub network_id: String,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub pool_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u64,
    /// MiB
    pub ram: u64,
}

/// A lookup that failed: the cloud did not answer, or what the
/// configuration names is not there (with the fix).
#[derive(Debug)]
pub enum LookupError {
    Api(ApiError),
    Missing { problem: String, fix: String },
}

impl LookupError {
    fn missing(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Missing {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl From<ApiError> for LookupError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<LookupError> for CloudError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::Api(e) => e.into(),
            LookupError::Missing { problem, fix } => {
                CloudError::Rejected(format!("{problem} (fix: {fix})"))
            }
        }
    }
}

#[derive(Deserialize)]
struct Images {
    images: Vec<Image>,
}

#[derive(Deserialize)]
struct Image {
    id: String,
    name: Option<String>,
    status: String,
}

#[derive(Deserialize)]
struct Flavors {
    flavors: Vec<Flavor>,
}

#[derive(Deserialize)]
struct SecurityGroups {
    security_groups: Vec<SecurityGroup>,
}

#[derive(Deserialize)]
struct SecurityGroup {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct TokenInfo {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    project: Option<Project>,
}

#[derive(Deserialize)]
struct Project {
    id: String,
}

impl OpenStackCloud {
    /// Everything a launch needs, looked up on first use.
    pub(super) async fn resolved(&self) -> Result<&Resolved, LookupError> {
        self.resolved
            .get_or_try_init(|| async {
                let c = &self.config;
                let image_id = self.image(&c.image).await?;
                let flavor = self.flavor(&c.flavor).await?;
                let networks = self.networks().await?;
                let network_id = pick_network(&networks, c.network.as_deref())?;
                let pool_id = match &c.floating_ip_pool {
                    Some(pool) => Some(pick_pool(&networks, pool)?),
                    None => None,
                };
                let security_group_ids = self.security_groups(&c.security_groups).await?;
                if let Some(key) = &c.key_name {
                    self.key_pair(key).await?;
                }
                Ok(Resolved {
                    image_id,
                    flavor,
                    network_id,
                    security_group_ids,
                    key_name: c.key_name.clone(),
                    pool_id,
                })
            })
            .await
    }

    /// The flavor and image id of a VM of `shape`: those of `[cloud]` as
    /// resolved once, or (a launch profile's) looked up once each and kept.
    pub(super) async fn shape_ids(
        &self,
        resolved: &Resolved,
        shape: &crate::cloud::Shape,
    ) -> Result<(Flavor, String), LookupError> {
        if shape.flavor == self.config.flavor && shape.image == self.config.image {
            return Ok((resolved.flavor.clone(), resolved.image_id.clone()));
        }
        let key = (shape.flavor.clone(), shape.image.clone());
        let mut known = self.profile_shapes.lock().await;
        if let Some(ids) = known.get(&key) {
            return Ok(ids.clone());
        }
        let ids = (
            self.flavor(&shape.flavor).await?,
            self.image(&shape.image).await?,
        );
        known.insert(key, ids.clone());
        Ok(ids)
    }

    /// The id of the project the token is scoped to, from Keystone's token
    /// introspection (`GET /v3/auth/tokens`); osauth does not expose it.
    pub(super) async fn project_id(&self) -> Result<&str, ApiError> {
        self.project
            .get_or_try_init(|| async {
                let ready = self.api.ready().await?;
                let token = super::session::current_token(&ready.session).await?;
                let endpoint = ready
                    .session
                    .get_endpoint(IDENTITY, [""; 0])
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            "find Keystone in the catalog",
                            super::errors::ApiErrorKind::BadAnswer,
                            e.to_string(),
                        )
                    })?;
                let versioned = endpoint.path().trim_end_matches('/').ends_with("/v3");
                let path: &[&str] = if versioned {
                    &["auth", "tokens"]
                } else {
                    &["v3", "auth", "tokens"]
                };
                let reply = self
                    .api
                    .call("read the project of the token", Repeat::Idempotent, |r| {
                        use secrecy::ExposeSecret;
                        r.session
                            .get(IDENTITY, path)
                            .header("X-Subject-Token", token.expose_secret())
                    })
                    .await?;
                let info: TokenInfo = reply.json()?;
                info.token.project.map(|p| p.id).ok_or_else(|| {
                    ApiError::new(
                        "read the project of the token",
                        super::errors::ApiErrorKind::Credentials,
                        "the token is not scoped to a project: set project_name (or OS_PROJECT_NAME)",
                    )
                })
            })
            .await
            .map(String::as_str)
    }

    pub(super) async fn image(&self, wanted: &str) -> Result<String, LookupError> {
        let reply = self
            .api
            .call("look up the image", Repeat::Idempotent, |r| {
                r.session.get(IMAGE, ["images"]).query(&[("name", wanted)])
            })
            .await?;
        let mut found: Vec<Image> = reply.json::<Images>()?.images;
        if found.is_empty() && uuid::Uuid::parse_str(wanted).is_ok() {
            match self
                .api
                .call("look up the image", Repeat::Idempotent, |r| {
                    r.session.get(IMAGE, ["images", wanted])
                })
                .await
            {
                Ok(reply) => found.push(reply.json()?),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let fix = "upload or snapshot the image, or set cloud.image to a name or id from `openstack image list`";
        match found.as_slice() {
            [] => Err(LookupError::missing(format!("no image {wanted:?}"), fix)),
            [one] if one.status != "active" => Err(LookupError::missing(
                format!("image {wanted:?} is {}, not active", one.status),
                "wait until the snapshot is active, or pick another image",
            )),
            [one] => Ok(one.id.clone()),
            several => Err(LookupError::missing(
                format!("{} images are named {wanted:?}", several.len()),
                format!(
                    "set cloud.image to the id of one of them ({})",
                    several
                        .iter()
                        .map(|i| format!("{} {}", i.id, i.name.as_deref().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    pub(super) async fn flavor(&self, wanted: &str) -> Result<Flavor, LookupError> {
        let reply = self
            .api
            .call("list the flavors", Repeat::Idempotent, |r| {
                r.session
                    .get(COMPUTE, ["flavors", "detail"])
                    .header("OpenStack-API-Version", super::session::NOVA_MICROVERSION)
            })
            .await?;
        let flavors = reply.json::<Flavors>()?.flavors;
        flavors
            .iter()
            .find(|f| f.id == wanted)
            .or_else(|| flavors.iter().find(|f| f.name == wanted))
            .cloned()
            .ok_or_else(|| {
                LookupError::missing(
                    format!("no flavor {wanted:?}"),
                    format!(
                        "set cloud.flavor to one of: {}",
                        flavors
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    pub(super) async fn networks(&self) -> Result<Vec<Network>, LookupError> {
        let reply = self
            .api
            .call("list the networks", Repeat::Idempotent, |r| {
                r.session.get(NETWORK, ["networks"])
            })
            .await?;
        Ok(reply.json::<Networks>()?.networks)
    }

    pub(super) async fn security_groups(
        &self,
        wanted: &[String],
    ) -> Result<Vec<String>, LookupError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        // Every project has a "default" group, and an admin sees them all:
        // only our project's groups count.
        let project = self.project_id().await?.to_owned();
        let reply = self
            .api
            .call("list the security groups", Repeat::Idempotent, |r| {
                r.session
                    .get(NETWORK, ["security-groups"])
                    .query(&[("project_id", project.as_str())])
            })
            .await?;
        let groups = reply.json::<SecurityGroups>()?.security_groups;
        let mut ids = Vec::with_capacity(wanted.len());
        for name in wanted {
            let matching: Vec<&SecurityGroup> = groups
                .iter()
                .filter(|g| &g.id == name || &g.name == name)
                .collect();
            match matching.as_slice() {
                [one] => ids.push(one.id.clone()),
                [] => {
                    return Err(LookupError::missing(
                        format!("no security group {name:?} in the project"),
                        format!(
                            "create it (`openstack security group create {name}`) or remove it from cloud.security_groups"
                        ),
                    ));
                }
                _ => {
                    return Err(LookupError::missing(
                        format!("several security groups are named {name:?}"),
                        "put the id of the right one in cloud.security_groups",
                    ));
                }
            }
        }
        Ok(ids)
    }

    pub(super) async fn key_pair(&self, name: &str) -> Result<(), LookupError> {
        match self
            .api
            .call("look up the key pair", Repeat::Idempotent, |r| {
                r.session.get(COMPUTE, ["os-keypairs", name])
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(LookupError::missing(
                format!("no key pair {name:?}"),
                format!(
                    "import it (`openstack keypair create --public-key ~/.ssh/id_ed25519.pub {name}`) or unset cloud.key_name"
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
