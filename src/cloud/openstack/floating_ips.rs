//! Neutron floating IPs: reuse a free one of the project, else allocate
//! from the pool; attach it to the server's port; give it back on delete.
//! Every floating IP stackbinder uses carries the description
//! `stackbinder`, so `list_owned` finds it again.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use crate::cloud::{CloudError, CloudResult, FloatingIp};
use osauth::services::NETWORK;
use serde::Deserialize;
use serde_json::json;

/// The description that marks a floating IP as stackbinder's.
pub const OWNED_DESCRIPTION: &str = "stackbinder";

#[derive(Deserialize)]
struct Ports {
    ports: Vec<Port>,
}

#[derive(Deserialize)]
struct Port {
    id: String,
}

#[derive(Deserialize)]
pub struct FloatingIps {
    pub floatingips: Vec<NeutronFip>,
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
    pub(super) async fn attach_fip(&self, pool: &str, server_id: &str) -> CloudResult<FloatingIp> {
        let ports = self
            .api
            .call("find the server's port", Repeat::Idempotent, |r| {
                r.session
                    .get(NETWORK, ["ports"])
                    .query(&[("device_id", server_id)])
            })
            .await?
            .json::<Ports>()?
            .ports;
        let Some(port) = ports.into_iter().next() else {
            return Err(CloudError::Unavailable(
                "the server has no network port yet".into(),
            ));
        };
        let project = self.project_id().await?.to_owned();
        let fips = self.pool_fips(pool, &project).await?;
        // Attached by an earlier attempt whose answer we lost.
        if let Some(mine) = fips.iter().find(|f| f.port_id.as_deref() == Some(&port.id)) {
            return Ok(FloatingIp {
                id: mine.id.clone(),
                address: mine.floating_ip_address.clone(),
            });
        }
        let body_port = port.id.clone();
        let reply = match fips.into_iter().find(|f| f.port_id.is_none()) {
            Some(free) => {
                let body =
                    json!({"floatingip": {"port_id": body_port, "description": OWNED_DESCRIPTION}});
                self.api
                    .call("attach a free floating IP", Repeat::Idempotent, |r| {
                        r.session
                            .put(NETWORK, ["floatingips", free.id.as_str()])
                            .json(&body)
                    })
                    .await
            }
            None => {
                let body = json!({"floatingip": {
                    "floating_network_id": pool,
                    "port_id": body_port,
                    "description": OWNED_DESCRIPTION,
                }});
                self.api
                    .call("allocate a floating IP", Repeat::Once, |r| {
                        r.session.post(NETWORK, ["floatingips"]).json(&body)
                    })
                    .await
            }
        };
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

    /// The project's floating IPs from `pool`.
    pub(super) async fn pool_fips(
        &self,
        pool: &str,
        project: &str,
    ) -> Result<Vec<NeutronFip>, ApiError> {
        Ok(self
            .api
            .call("list the floating IPs", Repeat::Idempotent, |r| {
                r.session
                    .get(NETWORK, ["floatingips"])
                    .query(&[("floating_network_id", pool), ("project_id", project)])
            })
            .await?
            .json::<FloatingIps>()?
            .floatingips)
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

    pub(super) async fn owned_fips(&self) -> Result<Vec<FloatingIp>, ApiError> {
        let fips = self
            .api
            .call("list the floating IPs", Repeat::Idempotent, |r| {
                r.session
                    .get(NETWORK, ["floatingips"])
                    .query(&[("description", OWNED_DESCRIPTION)])
            })
            .await?
            .json::<FloatingIps>()?
            .floatingips;
        Ok(fips.into_iter().map(NeutronFip::into_ours).collect())
    }
}
