//! `stackbinder check` with the Jupyter proxy (`cloud.jupyter_access =
//! "proxy"`): stackbinder connects to each VM's fixed address, so this host
//! must reach the VM network; and nobody else needs Jupyter's port, so no
//! security group may open it to the whole internet.

use super::OpenStackCloud;
use super::api::Repeat;
use super::resolve::LookupError;
use crate::cloud::CheckItem;
use crate::host_network::{HostNetwork, Reach};
use ipnet::IpNet;
use osauth::services::NETWORK;
use serde::Deserialize;

#[derive(Deserialize)]
struct Subnets {
    subnets: Vec<Subnet>,
}

#[derive(Deserialize)]
struct Subnet {
    cidr: String,
}

#[derive(Deserialize)]
struct Rules {
    security_group_rules: Vec<Rule>,
}

/// A Neutron security group rule, as far as exposure goes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub direction: String,
    /// `tcp`, `6`, `any`... or none: every protocol.
    pub protocol: Option<String>,
    /// None: every port.
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    /// None (with no remote group): from anywhere.
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    #[serde(default)]
    pub remote_address_group_id: Option<String>,
}

impl Rule {
    /// Lets anyone on the internet connect to TCP `port`.
    pub fn opens_to_the_world(&self, port: u16) -> bool {
        let tcp = self
            .protocol
            .as_deref()
            .is_none_or(|p| matches!(p.to_ascii_lowercase().as_str(), "tcp" | "6" | "any"));
        let port = u32::from(port);
        let ports = match (self.port_range_min, self.port_range_max) {
            (None, _) => true,
            (Some(min), max) => min <= port && port <= max.unwrap_or(min),
        };
        let from_anywhere = self.remote_group_id.is_none()
            && self.remote_address_group_id.is_none()
            && self
                .remote_ip_prefix
                .as_deref()
                .is_none_or(|p| p.parse::<IpNet>().is_ok_and(|n| n.prefix_len() == 0));
        self.direction == "ingress" && tcp && ports && from_anywhere
    }

    fn source(&self) -> &str {
        self.remote_ip_prefix.as_deref().unwrap_or("anywhere")
    }
}

/// The "Jupyter port" line: which of `groups` (name, rules) open `port`.
pub fn exposure_line(groups: &[(String, Vec<Rule>)], port: u16) -> CheckItem {
    const WHAT: &str = "Jupyter port";
    let open: Vec<(&str, &Rule)> = groups
        .iter()
        .flat_map(|(name, rules)| rules.iter().map(move |r| (name.as_str(), r)))
        .filter(|(_, r)| r.opens_to_the_world(port))
        .collect();
    if open.is_empty() {
        let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
        return CheckItem::ok(
            WHAT,
            if names.is_empty() {
                format!("no security group is configured, so nothing opens port {port}")
            } else {
                format!(
                    "no rule of {} opens TCP port {port} to the internet",
                    names.join(", ")
                )
            },
        );
    }
    let detail = open
        .iter()
        .map(|(group, rule)| {
            format!(
                "security group {group:?} opens TCP port {port} to {} (rule {})",
                rule.source(),
                rule.id
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let (group, rule) = open[0];
    CheckItem::fail(
        WHAT,
        format!("{detail}: only stackbinder's proxy needs it"),
        format!(
            "delete the rule (`openstack security group rule delete {}`) and let in only \
             stackbinder's server: `openstack security group rule create --ingress --protocol tcp \
             --dst-port {port} --remote-group <the security group of stackbinder's server> {group}`",
            rule.id
        ),
    )
}

/// The "route to the VMs" line: can this host reach `cidrs`?
pub fn reach_line(network: &str, cidrs: &[IpNet], host: &HostNetwork) -> CheckItem {
    const WHAT: &str = "route to the VMs";
    let listed = cidrs
        .iter()
        .map(IpNet::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let fix = format!(
        "run stackbinder on a host attached to the VM network {network} (or add a route to {listed} \
         through a router of the cloud), or set cloud.jupyter_access = \"floating_ip\""
    );
    if cidrs.is_empty() {
        return CheckItem::fail(WHAT, format!("the network {network} has no subnet"), fix);
    }
    match host.reach(cidrs) {
        Reach::Address { address, subnet } => CheckItem::ok(
            WHAT,
            format!("this host has {address} in the VMs' subnet {subnet}"),
        ),
        Reach::Route { route, subnet } => CheckItem::ok(
            WHAT,
            format!(
                "the route to {} (via {}) covers the VMs' subnet {subnet}",
                route.destination, route.interface
            ),
        ),
        Reach::None => CheckItem::fail(
            WHAT,
            format!(
                "this host has no address in and no route to the VMs' subnets ({listed}), \
                 so the Jupyter proxy cannot reach them"
            ),
            fix,
        ),
    }
}

impl OpenStackCloud {
    /// The CIDRs of the network's subnets.
    pub(super) async fn subnet_cidrs(&self, network_id: &str) -> Result<Vec<IpNet>, LookupError> {
        let reply = self
            .api
            .call("list the VM network's subnets", Repeat::Idempotent, |r| {
                r.session
                    .get(NETWORK, ["subnets"])
                    .query(&[("network_id", network_id)])
            })
            .await?;
        Ok(reply
            .json::<Subnets>()?
            .subnets
            .iter()
            .filter_map(|s| s.cidr.parse().ok())
            .collect())
    }

    /// The rules of each configured security group, by name.
    pub(super) async fn security_group_rules(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<Rule>)>, LookupError> {
        let mut groups = Vec::with_capacity(ids.len());
        for (name, id) in self.config.security_groups.iter().zip(ids) {
            let reply = self
                .api
                .call("list a security group's rules", Repeat::Idempotent, |r| {
                    r.session
                        .get(NETWORK, ["security-group-rules"])
                        .query(&[("security_group_id", id.as_str())])
                })
                .await?;
            groups.push((name.clone(), reply.json::<Rules>()?.security_group_rules));
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: Option<&str>, group: Option<&str>, min: Option<u32>, max: Option<u32>) -> Rule {
        Rule {
            id: "r1".into(),
            direction: "ingress".into(),
            protocol: Some("tcp".into()),
            port_range_min: min,
            port_range_max: max,
            remote_ip_prefix: prefix.map(str::to_owned),
            remote_group_id: group.map(str::to_owned),
            remote_address_group_id: None,
        }
    }

    #[test]
    fn the_jupyter_port_open_to_any_address_is_exposure() {
        for r in [
            rule(Some("0.0.0.0/0"), None, Some(8888), Some(8888)),
            rule(Some("::/0"), None, Some(8000), Some(9000)),
            // No prefix and no group: Neutron lets everyone in.
            rule(None, None, Some(8888), Some(8888)),
            // No ports: all of them.
            rule(Some("0.0.0.0/0"), None, None, None),
            Rule {
                protocol: None,
                ..rule(Some("0.0.0.0/0"), None, None, None)
            },
        ] {
            assert!(r.opens_to_the_world(8888), "{r:?}");
        }
    }

    #[test]
    fn a_remote_group_a_narrow_prefix_another_port_or_egress_is_not() {
        for r in [
            rule(None, Some("stackbinder-server"), Some(8888), Some(8888)),
            rule(Some("10.0.0.5/32"), None, Some(8888), Some(8888)),
            rule(Some("0.0.0.0/0"), None, Some(22), Some(22)),
            Rule {
                direction: "egress".into(),
                ..rule(Some("0.0.0.0/0"), None, None, None)
            },
            Rule {
                protocol: Some("udp".into()),
                ..rule(Some("0.0.0.0/0"), None, None, None)
            },
        ] {
            assert!(!r.opens_to_the_world(8888), "{r:?}");
        }
    }

    #[test]
    fn the_exposure_line_names_the_group_and_the_fix() {
        let groups = vec![
            (
                "ssh-whitelist".to_owned(),
                vec![rule(Some("0.0.0.0/0"), None, Some(22), Some(22))],
            ),
            (
                "Open-top".to_owned(),
                vec![rule(Some("0.0.0.0/0"), None, Some(8888), Some(8888))],
            ),
        ];
        let line = exposure_line(&groups, 8888);
        assert!(!line.ok);
        assert!(
            line.detail
                .contains("\"Open-top\" opens TCP port 8888 to 0.0.0.0/0"),
            "{line:?}"
        );
        let fix = line.fix.unwrap();
        assert!(fix.contains("security group rule delete r1"), "{fix}");
        assert!(fix.contains("--remote-group"), "{fix}");
        assert!(exposure_line(&groups[..1], 8888).ok);
    }
}
