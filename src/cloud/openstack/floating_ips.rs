//! Neutron floating IPs: reuse a free one this installation allocated
//! earlier, else allocate one from the pool; attach it to the server's
//! port; give it back on delete. Every floating IP stackbinder allocates
//! is described `stackbinder <installation id>`, so `list_owned` finds it
//! again and no other installation, and no operator's floating IP, is ever
//! taken or released.
//!
//! Reusing a free floating IP is a race when VMs boot together: both see
//! it free and both attach it, and the second silently wins. Only this
//! installation reuses its floating IPs, and one process drives its VMs,
//! so reuse takes turns in the process (look, then attach, one VM at a
//! time; allocating a new address needs no turn). The attach is also
//! conditional on the revision Neutron showed (`If-Match:
//! revision_number=N`), a refusal (412) means another writer got there
//! first and another address is tried, and the answer must hold our port.
//! The turn is what makes it safe: the conformance test saw a real Neutron
//! accept two truly concurrent PUTs with the same `If-Match`.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use crate::cloud::{CloudError, CloudResult, FloatingIp, InstallationId};
use osauth::services::NETWORK;
use serde::Deserialize;
use serde_json::json;

/// Lost races for free floating IPs before allocating a new one instead.
const REUSE_ATTEMPTS: usize = 4;

/// The description that marks a floating IP as `owner`'s.
pub fn owned_description(owner: &InstallationId) -> String {
    format!("stackbinder {owner}")
}

#[derive(Deserialize)]
struct Port {
    id: String,
}

#[derive(Deserialize)]
struct FipRoot {
    floatingip: NeutronFip,
}

#[derive(Deserialize)]
pub struct NeutronFip {
    pub id: String,
    pub floating_ip_address: String,
    pub port_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Bumped by Neutron on every change; the attach is conditional on it.
    #[serde(default)]
    pub revision_number: Option<u64>,
}

impl NeutronFip {
    fn into_ours(self) -> FloatingIp {
        FloatingIp {
            id: self.id,
            address: self.floating_ip_address,
        }
    }
}

impl OpenStackCloud {
    pub(super) async fn attach_fip(
        &self,
        pool: &str,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        let ports: Vec<Port> = self
            .list_all("find the server's port", "ports", |r, paging| {
                r.session
                    .get(NETWORK, ["ports"])
                    .query(&[("device_id", server_id)])
                    .query(paging)
            })
            .await?;
        let Some(port) = ports.into_iter().next() else {
            return Err(CloudError::Unavailable(
                "the server has no network port yet".into(),
            ));
        };
        let project = self.project_id().await?.to_owned();
        for _ in 0..REUSE_ATTEMPTS {
            let _turn = self.fip_reuse.lock().await;
            let fips = self.owned_pool_fips(pool, &project, owner).await?;
            // Attached by an earlier attempt whose answer we lost.
            if let Some(mine) = fips.iter().find(|f| f.port_id.as_deref() == Some(&port.id)) {
                return Ok(FloatingIp {
                    id: mine.id.clone(),
                    address: mine.floating_ip_address.clone(),
                });
            }
            let Some(free) = fips.into_iter().find(|f| f.port_id.is_none()) else {
                break;
            };
            match self.attach_if_unchanged(&free, &port.id).await? {
                Some(attached) => return Ok(attached),
                None => {
                    tracing::info!(fip = %free.id, "another VM took the free floating IP first; trying another")
                }
            }
        }
        self.allocate(pool, &port.id, owner).await
    }

    /// Attach `free` to `port` if nobody changed it since we looked;
    /// `None` when another VM got it first.
    async fn attach_if_unchanged(
        &self,
        free: &NeutronFip,
        port: &str,
    ) -> CloudResult<Option<FloatingIp>> {
        let body = json!({"floatingip": {"port_id": port}});
        let condition = free.revision_number.map(|n| format!("revision_number={n}"));
        let reply = self
            .api
            .call("attach a free floating IP", Repeat::Idempotent, |r| {
                let put = r
                    .session
                    .put(NETWORK, ["floatingips", free.id.as_str()])
                    .json(&body);
                match &condition {
                    Some(c) => put.header("If-Match", c.as_str()),
                    None => put,
                }
            })
            .await;
        match reply {
            Ok(reply) => {
                let fip = reply.json::<FipRoot>()?.floatingip;
                Ok((fip.port_id.as_deref() == Some(port)).then(|| fip.into_ours()))
            }
            // 412: the revision moved on (another attach); 409: Neutron
            // refuses to move an address that is associated meanwhile.
            Err(e) if matches!(e.status.map(|s| s.as_u16()), Some(412 | 409)) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn allocate(
        &self,
        pool: &str,
        port: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        let body = json!({"floatingip": {
            "floating_network_id": pool,
            "port_id": port,
            "description": owned_description(owner),
        }});
        let reply = self
            .api
            .call("allocate a floating IP", Repeat::Once, |r| {
                r.session.post(NETWORK, ["floatingips"]).json(&body)
            })
            .await;
        match reply {
            Ok(reply) => Ok(reply.json::<FipRoot>()?.floatingip.into_ours()),
            Err(e)
                if e.error_type.as_deref() == Some("IpAddressGenerationFailure")
                    || (e.status == Some(reqwest::StatusCode::CONFLICT)
                        && e.mentions("no more ip")) =>
            {
                Err(CloudError::NoFloatingIps(format!(
                    "the pool {:?} has no free address",
                    self.config.floating_ip_pool.as_deref().unwrap_or(pool)
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The floating IPs of `pool` in the project that `owner` allocated.
    pub(super) async fn owned_pool_fips(
        &self,
        pool: &str,
        project: &str,
        owner: &InstallationId,
    ) -> Result<Vec<NeutronFip>, ApiError> {
        let description = owned_description(owner);
        let fips: Vec<NeutronFip> = self
            .list_all("list the floating IPs", "floatingips", |r, paging| {
                r.session
                    .get(NETWORK, ["floatingips"])
                    .query(&[
                        ("floating_network_id", pool),
                        ("project_id", project),
                        ("description", description.as_str()),
                    ])
                    .query(paging)
            })
            .await?;
        // Filtered again here: a Neutron that ignores a filter must not
        // hand us an operator's address.
        Ok(fips
            .into_iter()
            .filter(|f| f.description == description)
            .collect())
    }

    pub(super) async fn release_fip(&self, id: &str) -> CloudResult<()> {
        match self
            .api
            .call("release the floating IP", Repeat::Idempotent, |r| {
                r.session.delete(NETWORK, ["floatingips", id])
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every floating IP of the project that `owner` allocated.
    pub(super) async fn owned_fips(
        &self,
        owner: &InstallationId,
    ) -> Result<Vec<FloatingIp>, ApiError> {
        let description = owned_description(owner);
        let fips: Vec<NeutronFip> = self
            .list_all("list the floating IPs", "floatingips", |r, paging| {
                r.session
                    .get(NETWORK, ["floatingips"])
                    .query(&[("description", description.as_str())])
                    .query(paging)
            })
            .await?;
        Ok(fips
            .into_iter()
            .filter(|f| f.description == description)
            .map(NeutronFip::into_ours)
            .collect())
    }
}
