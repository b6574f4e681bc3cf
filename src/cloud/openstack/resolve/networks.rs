//! Which network the VMs attach to and which one floating IPs come from,
//! chosen from Neutron's list (pure), with the fix when the choice fails.

use super::LookupError;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Networks {
    pub networks: Vec<Network>,
}

#[derive(Deserialize, Clone)]
pub struct Network {
    pub id: String,
    pub name: String,
    #[serde(rename = "router:external", default)]
    pub external: bool,
}

/// The network VMs attach to: the configured one, else the project's only one.
pub fn pick_network(networks: &[Network], wanted: Option<&str>) -> Result<String, LookupError> {
    match wanted {
        Some(wanted) => {
            let matching: Vec<&Network> = networks
                .iter()
                .filter(|n| n.id == wanted || n.name == wanted)
                .collect();
            match matching.as_slice() {
                [one] => Ok(one.id.clone()),
                [] => Err(LookupError::missing(
                    format!("no network {wanted:?}"),
                    format!("set cloud.network to one of: {}", names(networks, false)),
                )),
                _ => Err(LookupError::missing(
                    format!("several networks are named {wanted:?}"),
                    "set cloud.network to the id of the right one",
                )),
            }
        }
        None => {
            let internal: Vec<&Network> = networks.iter().filter(|n| !n.external).collect();
            match internal.as_slice() {
                [one] => Ok(one.id.clone()),
                [] => Err(LookupError::missing(
                    "the project has no network for the VMs",
                    "create a network and a subnet, or ask the cloud's admins for one",
                )),
                several => Err(LookupError::missing(
                    format!(
                        "the project has {} networks, so stackbinder cannot choose",
                        several.len()
                    ),
                    format!("set cloud.network to one of: {}", names(networks, false)),
                )),
            }
        }
    }
}

/// The external network floating IPs are allocated from.
pub fn pick_pool(networks: &[Network], wanted: &str) -> Result<String, LookupError> {
    networks
        .iter()
        .find(|n| n.external && (n.id == wanted || n.name == wanted))
        .map(|n| n.id.clone())
        .ok_or_else(|| {
            LookupError::missing(
                format!("no external network {wanted:?} to take floating IPs from"),
                format!(
                    "set cloud.floating_ip_pool to one of: {} (or unset it)",
                    names(networks, true)
                ),
            )
        })
}

fn names(networks: &[Network], external: bool) -> String {
    let names: Vec<&str> = networks
        .iter()
        .filter(|n| n.external == external)
        .map(|n| n.name.as_str())
        .collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, external: bool) -> Network {
        Network {
            id: format!("id-{name}"),
            name: name.into(),
            external,
        }
    }

    #[test]
    fn the_only_internal_network_is_chosen_when_none_is_configured() {
        let nets = [net("private", false), net("public", true)];
        assert_eq!(pick_network(&nets, None).unwrap(), "id-private");
    }

    #[test]
    fn several_networks_need_cloud_network_and_the_error_says_so() {
        let nets = [net("a", false), net("b", false)];
        let LookupError::Missing { problem, fix } = pick_network(&nets, None).unwrap_err() else {
            panic!("expected a missing network");
        };
        assert!(problem.contains("2 networks"), "{problem}");
        assert!(
            fix.contains("cloud.network") && fix.contains("a, b"),
            "{fix}"
        );
    }

    #[test]
    fn the_pool_must_be_an_external_network() {
        let nets = [net("private", false), net("public", true)];
        assert_eq!(pick_pool(&nets, "public").unwrap(), "id-public");
        assert!(pick_pool(&nets, "private").is_err());
    }
}
