//! Neutron v2.0.

use super::*;

pub(super) fn fip_json(w: &World, f: &FakeFip) -> Value {
    let pool = w.networks.iter().find(|n| n["name"] == POOL).unwrap()["id"].clone();
    json!({"id": f.id, "floating_ip_address": f.address, "floating_network_id": pool,
        "port_id": f.port_id, "fixed_ip_address": Value::Null, "router_id": Value::Null,
        "status": if f.port_id.is_some() { "ACTIVE" } else { "DOWN" },
        "project_id": w.project_id, "tenant_id": w.project_id, "description": f.description,
        "tags": [], "revision_number": f.revision})
}

/// Neutron: version discovery at the root, then v2.0.
pub(super) fn network(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
    headers: &HeaderMap,
) -> Response {
    if seg.is_empty() {
        return ok(json!({"versions": [{"id": "v2.0", "status": "CURRENT",
            "links": [{"href": format!("{}/network/v2.0/", w.base), "rel": "self"}]}]}));
    }
    let seg = &seg[1..];
    match (method.as_str(), seg) {
        ("GET", ["networks"]) => ok(json!({"networks": w.networks})),
        ("GET", ["subnets"]) => {
            let subnets: Vec<&Value> = w
                .subnets
                .iter()
                .filter(|s| {
                    query
                        .get("network_id")
                        .is_none_or(|n| s["network_id"] == n.as_str())
                })
                .collect();
            ok(json!({"subnets": subnets}))
        }
        ("GET", ["security-group-rules"]) => {
            let rules: Vec<&Value> = w
                .sgs
                .iter()
                .filter(|g| g["project_id"] == w.project_id.as_str())
                .flat_map(|g| g["security_group_rules"].as_array().into_iter().flatten())
                .filter(|r| {
                    query
                        .get("security_group_id")
                        .is_none_or(|g| r["security_group_id"] == g.as_str())
                })
                .collect();
            ok(json!({"security_group_rules": rules}))
        }
        ("GET", ["security-groups"]) => {
            let groups: Vec<&Value> = w
                .sgs
                .iter()
                .filter(|g| {
                    query
                        .get("project_id")
                        .is_none_or(|p| g["project_id"] == p.as_str())
                })
                .collect();
            ok(json!({"security_groups": groups}))
        }
        ("GET", ["ports"]) => {
            let device = query.get("device_id").cloned().unwrap_or_default();
            let net = w.networks[0]["id"].clone();
            let ports: Vec<Value> = w.servers.values().filter(|s| s.id == device).map(|s| json!({
                "id": s.port_id, "device_id": s.id, "device_owner": "compute:nova", "network_id": net,
                "fixed_ips": [{"ip_address": s.address, "subnet_id": "s1"}], "status": "ACTIVE",
                "mac_address": "fa:16:3e:00:00:01"})).collect();
            page(w, "ports", "network/v2.0/ports", ports, query)
        }
        ("GET", ["floatingips"]) => {
            let fips: Vec<Value> = w
                .fips
                .values()
                .map(|f| fip_json(w, f))
                .filter(|f| {
                    query
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "limit" | "marker"))
                        .all(|(k, v)| f.get(k).is_none_or(|x| x.as_str() == Some(v.as_str())))
                })
                .collect();
            page(w, "floatingips", "network/v2.0/floatingips", fips, query)
        }
        ("POST", ["floatingips"]) => {
            if w.fips.len() as i64 >= w.limits.floatingips {
                return err(neutron_error(
                    409,
                    "OverQuota",
                    "Quota exceeded for resources: ['floatingip'].",
                ));
            }
            let Some(address) = w.pool_free.pop() else {
                let pool = w.networks.iter().find(|n| n["name"] == POOL).unwrap()["id"].to_string();
                return err(neutron_error(
                    409,
                    "IpAddressGenerationFailure",
                    &format!("No more IP addresses available on network {pool}."),
                ));
            };
            let b = &body.unwrap_or(Value::Null)["floatingip"];
            let f = FakeFip {
                id: id(),
                address,
                port_id: b["port_id"].as_str().map(str::to_owned),
                description: b["description"].as_str().unwrap_or("").into(),
                revision: 1,
            };
            w.fips.insert(f.id.clone(), f.clone());
            reply(201, json!({"floatingip": fip_json(w, &f)}), None, &[])
        }
        ("PUT", ["floatingips", fid]) => {
            let b = body.unwrap_or(Value::Null)["floatingip"].clone();
            let Some(f) = w.fips.get_mut(*fid) else {
                return err(neutron_error(
                    404,
                    "FloatingIPNotFound",
                    &format!("Floating IP {fid} could not be found"),
                ));
            };
            let wanted = headers
                .get("if-match")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("revision_number="))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(wanted) = wanted
                && wanted != f.revision
            {
                return err(neutron_error(
                    412,
                    "RevisionNumberConstraintFailed",
                    &format!(
                        "Constrained to {wanted}, but current revision is {}",
                        f.revision
                    ),
                ));
            }
            f.revision += 1;
            f.port_id = b["port_id"].as_str().map(str::to_owned);
            if let Some(d) = b["description"].as_str() {
                f.description = d.into();
            }
            let f = f.clone();
            ok(json!({"floatingip": fip_json(w, &f)}))
        }
        ("DELETE", ["floatingips", fid]) => match w.fips.remove(*fid) {
            Some(f) => {
                w.pool_free.push(f.address);
                reply(204, Value::Null, None, &[])
            }
            None => err(neutron_error(
                404,
                "FloatingIPNotFound",
                &format!("Floating IP {fid} could not be found"),
            )),
        },
        ("GET", ["quotas", _project, "details"]) => ok(json!({"quota": {
            "floatingip": {"limit": w.limits.floatingips, "used": w.fips.len(), "reserved": 0},
            "network": {"limit": 100, "used": 1, "reserved": 0},
            "port": {"limit": 500, "used": w.servers.len(), "reserved": 0},
            "security_group": {"limit": 10, "used": 3, "reserved": 0}
        }})),
        _ => err(neutron_error(
            404,
            "HTTPNotFound",
            "The resource could not be found.",
        )),
    }
}
