//! Room for one more VM: Nova (instances, cores, RAM), Cinder (volumes,
//! gigabytes) and Neutron (floating IPs) limits and usage, read before a
//! launch so the user reads "this project uses 20 of 20 instances" instead
//! of a raw 403 from deep inside Nova; Cinder's again before a user's home
//! volume is made.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::ApiError;
use super::resolve::{Flavor, Resolved};
use super::session::{COMPUTE, NOVA_MICROVERSION};
use osauth::services::NETWORK;
use serde::Deserialize;

#[derive(Deserialize)]
struct Limits {
    limits: Absolute,
}

#[derive(Deserialize)]
struct Absolute {
    absolute: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct NeutronQuota {
    quota: NeutronResources,
}

#[derive(Deserialize)]
struct NeutronResources {
    floatingip: Detail,
}

#[derive(Deserialize)]
struct Detail {
    limit: i64,
    used: i64,
    #[serde(default)]
    reserved: i64,
}

/// One resource: what the project uses, its limit (negative: unlimited),
/// and what one more VM needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub resource: &'static str,
    pub used: i64,
    pub limit: i64,
    pub needed: i64,
    /// What needs it: "a VM", "your storage".
    pub needed_by: &'static str,
}

impl Usage {
    pub fn has_room(&self) -> bool {
        self.limit < 0 || self.used + self.needed <= self.limit
    }

    /// "this project uses 20 of 20 instances" (plus what a VM needs when
    /// that is more than one).
    pub fn describe(&self) -> String {
        let mut s = if self.limit < 0 {
            format!(
                "this project uses {} {} (no limit)",
                self.used, self.resource
            )
        } else {
            format!(
                "this project uses {} of {} {}",
                self.used, self.limit, self.resource
            )
        };
        if self.needed != 1 {
            s.push_str(&format!(", and {} needs {}", self.needed_by, self.needed));
        }
        s
    }
}

/// How many more VMs fit in every limit of `usage`; `None` when no
/// resource is limited.
pub fn room(usage: &[Usage]) -> Option<u64> {
    usage
        .iter()
        .filter(|u| u.limit >= 0 && u.needed > 0)
        .map(|u| u64::try_from((u.limit - u.used) / u.needed).unwrap_or(0))
        .min()
}

/// Count a volume of `size_gb` as used already: the home volume a user's
/// first launch makes before its server, so the room left is what remains
/// after it.
pub fn reserve_volume(usage: &mut [Usage], size_gb: u32) {
    for u in usage {
        match u.resource {
            VOLUMES => u.used += 1,
            VOLUME_GB => u.used += i64::from(size_gb),
            _ => {}
        }
    }
}

const VOLUMES: &str = "volumes";
const VOLUME_GB: &str = "GB of volume storage";

fn field(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> i64 {
    map.get(key).and_then(|v| v.as_i64()).unwrap_or(-1)
}

impl OpenStackCloud {
    /// Usage against the limit of every resource one more VM takes.
    /// `owner`: the installation launching, whose free floating IPs would be
    /// reused (none for `check`, which then counts one more allocation).
    /// `flavor` and `volume_size_gb` are those of the VM to make (of
    /// `[cloud]` or of its launch profile).
    pub(super) async fn usage(
        &self,
        resolved: &Resolved,
        flavor: &Flavor,
        volume_size_gb: u32,
        owner: Option<&crate::cloud::InstallationId>,
    ) -> Result<Vec<Usage>, ApiError> {
        let nova = async {
            self.api
                .call("read Nova's limits", Repeat::Idempotent, |r| {
                    r.session
                        .get(COMPUTE, ["limits"])
                        .header("OpenStack-API-Version", NOVA_MICROVERSION)
                })
                .await?
                .json::<Limits>()
        };
        let (nova, cinder) = tokio::try_join!(nova, self.cinder_limits())?;
        let n = &nova.limits.absolute;
        let needed_by = "a VM";
        let mut usage = vec![
            Usage {
                resource: "instances",
                used: field(n, "totalInstancesUsed"),
                limit: field(n, "maxTotalInstances"),
                needed: 1,
                needed_by,
            },
            Usage {
                resource: "VCPUs",
                used: field(n, "totalCoresUsed"),
                limit: field(n, "maxTotalCores"),
                needed: flavor.vcpus as i64,
                needed_by,
            },
            Usage {
                resource: "MiB of RAM",
                used: field(n, "totalRAMUsed"),
                limit: field(n, "maxTotalRAMSize"),
                needed: flavor.ram as i64,
                needed_by,
            },
        ];
        usage.extend(cinder_usage(&cinder, volume_size_gb, needed_by));
        // Behind the Jupyter proxy a launch allocates no floating IP.
        let allocates = self.config.jupyter_access == crate::config::JupyterAccess::FloatingIp;
        if let Some(pool) = &resolved.pool_id
            && allocates
        {
            let project = self.project_id().await?.to_owned();
            // Some clouds' policy hides Neutron quotas from members: then
            // Neutron's own OverQuota answer at allocation is all we get.
            let q = match self
                .api
                .call("read Neutron's quota", Repeat::Idempotent, |r| {
                    r.session
                        .get(NETWORK, ["quotas", project.as_str(), "details"])
                })
                .await
            {
                Ok(reply) => reply.json::<NeutronQuota>()?.quota.floatingip,
                Err(e) if e.status == Some(reqwest::StatusCode::FORBIDDEN) => {
                    tracing::debug!(error = %e, "Neutron quota not readable; skipped");
                    return Ok(usage);
                }
                Err(e) => return Err(e),
            };
            let mut fip = Usage {
                resource: "floating IPs",
                used: q.used + q.reserved,
                limit: q.limit,
                needed: 1,
                needed_by,
            };
            // A free floating IP of ours is reused, not allocated.
            if !fip.has_room()
                && let Some(owner) = owner
            {
                let free = self
                    .owned_pool_fips(pool, &project, owner)
                    .await?
                    .iter()
                    .any(|f| f.port_id.is_none());
                if free {
                    fip.needed = 0;
                }
            }
            usage.push(fip);
        }
        Ok(usage)
    }

    /// Usage against Cinder's limits of a new home volume of `size_gb`.
    pub(super) async fn volume_usage(&self, size_gb: u32) -> Result<Vec<Usage>, ApiError> {
        let limits = self.cinder_limits().await?;
        Ok(cinder_usage(&limits, size_gb, "your storage").into())
    }

    async fn cinder_limits(&self) -> Result<Limits, ApiError> {
        let volume = self.api.ready().await?.volume;
        self.api
            .call("read Cinder's limits", Repeat::Idempotent, |r| {
                r.session.get(volume, ["limits"])
            })
            .await?
            .json::<Limits>()
    }
}

/// One more volume of `size_gb` against Cinder's volumes and gigabytes.
fn cinder_usage(limits: &Limits, size_gb: u32, needed_by: &'static str) -> [Usage; 2] {
    let c = &limits.limits.absolute;
    [
        Usage {
            resource: VOLUMES,
            used: field(c, "totalVolumesUsed"),
            limit: field(c, "maxTotalVolumes"),
            needed: 1,
            needed_by,
        },
        Usage {
            resource: VOLUME_GB,
            used: field(c, "totalGigabytesUsed"),
            limit: field(c, "maxTotalVolumeGigabytes"),
            needed: i64::from(size_gb),
            needed_by,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_project_says_how_full_it_is() {
        let u = Usage {
            resource: "instances",
            used: 20,
            limit: 20,
            needed: 1,
            needed_by: "a VM",
        };
        assert!(!u.has_room());
        assert_eq!(u.describe(), "this project uses 20 of 20 instances");
    }

    #[test]
    fn the_room_is_what_the_tightest_limit_leaves() {
        let u = |used, limit, needed| Usage {
            resource: "x",
            used,
            limit,
            needed,
            needed_by: "a VM",
        };
        assert_eq!(room(&[u(2, 20, 1), u(40, 80, 8), u(0, -1, 4)]), Some(5));
        assert_eq!(room(&[u(20, 20, 1)]), Some(0));
        // Over the limit already (a quota lowered under the usage).
        assert_eq!(room(&[u(25, 20, 1)]), Some(0));
        assert_eq!(room(&[u(3, -1, 1), u(0, 10, 0)]), None);
    }

    #[test]
    fn a_negative_limit_means_unlimited() {
        let u = Usage {
            resource: "VCPUs",
            used: 400,
            limit: -1,
            needed: 8,
            needed_by: "a VM",
        };
        assert!(u.has_room());
    }
}
