//! This host's view of the network: its addresses and its routes, to tell
//! whether it can reach the VMs' network (`stackbinder check` with the
//! Jupyter proxy, which connects to each VM's fixed address).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One route of the host's routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: IpNet,
    pub interface: String,
}

/// The host's addresses (with their prefix) and routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetwork {
    pub addresses: Vec<IpNet>,
    pub routes: Vec<Route>,
}

/// How the host reaches a subnet, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The host has an address in the subnet: it is on that network.
    Address { address: IpAddr, subnet: IpNet },
    /// A route (not the default route) covers the subnet.
    Route { route: Route, subnet: IpNet },
    /// Neither: packets to the VMs would take the default route, which
    /// rarely leads into a cloud's tenant network.
    None,
}

impl HostNetwork {
    /// Read the addresses of every interface and the kernel's routing
    /// tables (`/proc/net/route`, `/proc/net/ipv6_route`; Linux).
    pub fn read() -> std::io::Result<Self> {
        let addresses = if_addrs::get_if_addrs()?
            .into_iter()
            .filter_map(|interface| {
                let (ip, mask) = match interface.addr {
                    if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), IpAddr::V4(a.netmask)),
                    if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), IpAddr::V6(a.netmask)),
                };
                IpNet::with_netmask(ip, mask).ok()
            })
            .collect();
        let mut routes = Vec::new();
        if let Ok(text) = std::fs::read_to_string("/proc/net/route") {
            routes.extend(parse_ipv4_routes(&text));
        }
        if let Ok(text) = std::fs::read_to_string("/proc/net/ipv6_route") {
            routes.extend(parse_ipv6_routes(&text));
        }
        Ok(Self { addresses, routes })
    }

    /// How this host reaches the first of `subnets` it reaches at all.
    pub fn reach(&self, subnets: &[IpNet]) -> Reach {
        for subnet in subnets {
            if let Some(address) = self.addresses.iter().find(|a| subnet.contains(&a.addr())) {
                return Reach::Address {
                    address: address.addr(),
                    subnet: *subnet,
                };
            }
        }
        for subnet in subnets {
            if let Some(route) = self
                .routes
                .iter()
                .find(|r| r.destination.prefix_len() > 0 && r.destination.contains(subnet))
            {
                return Reach::Route {
                    route: route.clone(),
                    subnet: *subnet,
                };
            }
        }
        Reach::None
    }
}

/// `/proc/net/route`: a header, then `Iface Destination Gateway Flags ...
/// Mask ...` with the addresses in hex; only routes that are up.
fn parse_ipv4_routes(text: &str) -> Vec<Route> {
    const RTF_UP: u32 = 0x1;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let (interface, destination, flags, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(3)?)?,
                hex(f.get(7)?)?,
            );
            if flags & RTF_UP == 0 {
                return None;
            }
            // The kernel prints the network-order address as a native
            // integer: its bytes in memory are the address.
            let destination = Ipv4Addr::from(destination.to_ne_bytes());
            let mask = Ipv4Addr::from(mask.to_ne_bytes());
            Some(Route {
                destination: IpNet::with_netmask(destination.into(), mask.into()).ok()?,
                interface: (*interface).to_owned(),
            })
        })
        .collect()
}

/// `/proc/net/ipv6_route`: `destination prefix-length source ... interface`,
/// addresses as 32 hex digits.
fn parse_ipv6_routes(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let destination = Ipv6Addr::from(u128::from_str_radix(f.first()?, 16).ok()?);
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            Some(Route {
                destination: IpNet::new(destination.into(), prefix).ok()?.trunc(),
                interface: (*f.get(9)?).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
tun0\t0064A8C0\t0100000A\t0003\t0\t0\t0\t00FCFFFF\t0\t0\t0
down0\t000010AC\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    const IPV6_ROUTE: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
";

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn the_ipv4_routing_table_is_read_as_the_kernel_writes_it() {
        let routes = parse_ipv4_routes(ROUTE);
        let destinations: Vec<String> = routes.iter().map(|r| r.destination.to_string()).collect();
        // The route that is not up is left out.
        assert_eq!(
            destinations,
            ["0.0.0.0/0", "10.0.0.0/24", "192.168.100.0/22"]
        );
        assert_eq!(routes[2].interface, "tun0");
    }

    #[test]
    fn the_ipv6_routing_table_is_read_too() {
        let routes = parse_ipv6_routes(IPV6_ROUTE);
        let destinations: Vec<String> = routes.iter().map(|r| r.destination.to_string()).collect();
        assert_eq!(destinations, ["fd00::/64", "::/0"]);
    }

    #[test]
    fn an_address_in_the_subnet_or_a_covering_route_reaches_it_and_the_default_route_does_not() {
        let host = HostNetwork {
            addresses: vec![net("10.0.0.5/24"), net("127.0.0.1/8")],
            routes: parse_ipv4_routes(ROUTE),
        };
        assert_eq!(
            host.reach(&[net("10.0.0.0/24")]),
            Reach::Address {
                address: "10.0.0.5".parse().unwrap(),
                subnet: net("10.0.0.0/24")
            }
        );
        match host.reach(&[net("192.168.101.0/24")]) {
            Reach::Route { route, subnet } => {
                assert_eq!(route.interface, "tun0");
                assert_eq!(subnet, net("192.168.101.0/24"));
            }
            other => panic!("expected a route, got {other:?}"),
        }
        // Only the default route leads there.
        assert_eq!(host.reach(&[net("198.51.100.0/24")]), Reach::None);
        // A route narrower than the subnet does not cover all of it.
        assert_eq!(host.reach(&[net("192.168.0.0/16")]), Reach::None);
    }

    #[test]
    fn this_host_is_on_its_loopback_network() {
        let host = HostNetwork::read().expect("the host's network is readable");
        assert!(
            matches!(host.reach(&[net("127.0.0.0/8")]), Reach::Address { .. }),
            "{host:?}"
        );
    }
}
