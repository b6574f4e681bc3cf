//! Nova v2.1.

use super::*;

pub(super) fn server_json(w: &World, s: &FakeServer) -> Value {
    if w.down_cell.contains(&s.id) {
        return json!({
            "id": s.id, "status": "UNKNOWN", "tenant_id": w.project_id,
            "created": s.created, "links": [],
        });
    }
    let net = NETWORK;
    let mut addrs = vec![
        json!({"addr": s.address, "version": 4, "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}),
    ];
    for f in w
        .fips
        .values()
        .filter(|f| f.port_id.as_deref() == Some(&s.port_id))
    {
        addrs.push(
            json!({"addr": f.address, "version": 4, "OS-EXT-IPS:type": "floating",
            "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}),
        );
    }
    let mut attached: Vec<Value> = s
        .volume_id
        .iter()
        .map(|v| json!({"id": v, "delete_on_termination": s.delete_on_termination}))
        .collect();
    attached.extend(
        w.volumes
            .values()
            .filter(|v| {
                v.server_id.as_deref() == Some(&s.id) && Some(&v.id) != s.volume_id.as_ref()
            })
            .map(|v| json!({"id": v.id, "delete_on_termination": false})),
    );
    let mut v = json!({
        "id": s.id, "name": s.name, "status": s.status, "created": s.created,
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.status.to_lowercase(),
        "tenant_id": w.project_id, "user_id": "u1",
        "addresses": { net: addrs },
        "metadata": s.metadata,
        "image": "",
        "flavor": {"original_name": FLAVOR, "vcpus": 4, "ram": 16384, "disk": 0},
        "os-extended-volumes:volumes_attached": attached,
        "links": [],
    });
    if let Some(fault) = &s.fault {
        v["fault"] = json!({"code": 500, "message": fault, "created": "2026-01-01T00:00:00Z"});
    }
    v
}

pub(super) fn compute(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> Response {
    match (method.as_str(), seg) {
        ("GET", ["flavors", "detail"]) => ok(json!({"flavors": [
            {"id": "3", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40, "links": []},
            {"id": "4", "name": FLAVOR, "vcpus": 4, "ram": 16384, "disk": 80, "links": []},
            {"id": "9", "name": GPU_FLAVOR, "vcpus": 8, "ram": 65536, "disk": 80, "links": []},
        ]})),
        ("GET", ["os-keypairs", name]) => {
            if *name == KEY {
                ok(
                    json!({"keypair": {"name": KEY, "type": "ssh", "public_key": "ssh-ed25519 AAAA admin",
                    "fingerprint": "aa:bb", "user_id": "u1", "id": 1, "created_at": "2026-01-01T00:00:00Z", "deleted": false}}),
                )
            } else {
                err(error(
                    404,
                    "itemNotFound",
                    &format!("Keypair {name} not found for user u1"),
                ))
            }
        }
        ("GET", ["limits"]) => {
            let used = w.servers.len() as i64 + w.extra_instances;
            ok(json!({"limits": {"rate": [], "absolute": {
                "maxTotalInstances": w.limits.instances, "totalInstancesUsed": used,
                "maxTotalCores": w.limits.cores, "totalCoresUsed": used * 4,
                "maxTotalRAMSize": w.limits.ram, "totalRAMUsed": used * 16384,
                "maxServerMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
                "maxTotalKeypairs": 100, "maxServerGroups": 10, "maxServerGroupMembers": 10,
                "totalServerGroupsUsed": 0
            }}}))
        }
        ("POST", ["servers"]) => {
            let body = body.unwrap_or(Value::Null);
            let s = &body["server"];
            let used = w.servers.len() as i64 + w.extra_instances;
            if used >= w.limits.instances {
                return err(error(
                    403,
                    "forbidden",
                    &format!(
                        "Quota exceeded for instances: Requested 1, but already used {used} of {} instances",
                        w.limits.instances
                    ),
                ));
            }
            let bdm = &s["block_device_mapping_v2"][0];
            // Existing volumes to attach (boot_index -1, source volume):
            // Nova refuses one that is not available.
            let existing: Vec<String> = s["block_device_mapping_v2"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["source_type"] == "volume")
                .filter_map(|d| d["uuid"].as_str().map(str::to_owned))
                .collect();
            for vid in &existing {
                match w.volumes.get(vid) {
                    None => {
                        return err(error(
                            400,
                            "badRequest",
                            &format!(
                                "Block Device Mapping is Invalid: failed to get volume {vid}."
                            ),
                        ));
                    }
                    Some(v) if v.status != "available" => {
                        return err(error(
                            400,
                            "badRequest",
                            &format!(
                                "Invalid volume: volume {vid} status must be available, but current status is: {}",
                                v.status
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            let (server_id, port_id) = (id(), id());
            for vid in &existing {
                let v = w.volumes.get_mut(vid).expect("checked above");
                v.status = "in-use".into();
                v.server_id = Some(server_id.clone());
            }
            // Boot from volume makes the boot volume; boot from image does not.
            let volume_id = (!bdm.is_null()).then(id);
            let n = w.servers.len() + w.volumes.len() + 5;
            let address = if w.server_address.is_empty() {
                format!("10.0.0.{n}")
            } else {
                w.server_address.clone()
            };
            let metadata: BTreeMap<String, String> =
                serde_json::from_value(s["metadata"].clone()).unwrap_or_default();
            let fault = w.boot_fault.take();
            if let Some(volume_id) = &volume_id {
                w.volumes.insert(
                    volume_id.clone(),
                    FakeVolume::attached(
                        volume_id,
                        bdm["volume_size"].as_u64().unwrap_or(1),
                        &server_id,
                        BTreeMap::new(),
                    ),
                );
            }
            let script: VecDeque<String> = if volume_id.is_none() {
                w.builder_console.iter().cloned().collect()
            } else {
                VecDeque::new()
            };
            let powers_off = volume_id.is_none() && w.builder_powers_off;
            let polls = w.boot_polls;
            let seq = w.next_seq;
            w.next_seq += 1;
            if w.hide_next_created > 0 {
                let lists = std::mem::take(&mut w.hide_next_created);
                w.omit_from_lists.insert(server_id.clone(), lists);
            }
            let lose = if volume_id.is_some() {
                &mut w.lose_create_answers
            } else {
                &mut w.lose_builder_answers
            };
            let lost = *lose > 0;
            *lose = lose.saturating_sub(1);
            w.servers.insert(
                server_id.clone(),
                FakeServer {
                    id: server_id.clone(),
                    name: s["name"].as_str().unwrap_or("").into(),
                    status: "BUILD".into(),
                    task_state: Some("spawning".into()),
                    fault,
                    metadata,
                    volume_id,
                    // Nova deletes an image-backed server's disk with it.
                    delete_on_termination: bdm["delete_on_termination"].as_bool().unwrap_or(false),
                    console: Vec::new(),
                    script,
                    powers_off,
                    address,
                    port_id,
                    polls_until_active: polls,
                    polls_until_gone: None,
                    seq,
                    created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                },
            );
            if lost {
                return err(error(504, "computeFault", "Gateway Time-out"));
            }
            reply(
                202,
                json!({"server": {"id": server_id, "links": [], "OS-DCF:diskConfig": "MANUAL",
                "security_groups": s["security_groups"], "adminPass": "not-used"}}),
                None,
                &[],
            )
        }
        ("GET", ["servers", "detail"]) => {
            // Newest first, as Nova sorts by default (created_at desc).
            let mut listed: Vec<&FakeServer> = w
                .servers
                .values()
                .filter(|s| w.omit_from_lists.get(&s.id).is_none_or(|n| *n == 0))
                .collect();
            listed.sort_by_key(|s| std::cmp::Reverse(s.seq));
            let servers: Vec<Value> = listed.iter().map(|s| server_json(w, s)).collect();
            // Each list spends one omission (the first page stands for it).
            if !query.contains_key("marker") {
                for n in w.omit_from_lists.values_mut() {
                    *n = n.saturating_sub(1);
                }
            }
            page(w, "servers", "compute/v2.1/servers/detail", servers, query)
        }
        ("GET", ["servers", sid]) => {
            let Some(s) = w.servers.get_mut(*sid) else {
                return err(error(404, "itemNotFound", "Instance could not be found"));
            };
            if let Some(left) = s.polls_until_gone.as_mut() {
                if *left == 0 {
                    let s = w.servers.remove(*sid).unwrap();
                    finish_delete(w, &s);
                    return err(error(404, "itemNotFound", "Instance could not be found"));
                }
                *left -= 1;
            } else if s.status == "BUILD" {
                if s.polls_until_active == 0 {
                    s.task_state = None;
                    s.status = if s.fault.is_some() {
                        "ERROR".into()
                    } else {
                        "ACTIVE".into()
                    };
                } else {
                    s.polls_until_active -= 1;
                }
            }
            let s = w.servers[*sid].clone();
            ok(json!({"server": server_json(w, &s)}))
        }
        ("PUT", ["servers", sid]) => {
            let Some(s) = w.servers.get_mut(*sid) else {
                return err(error(404, "itemNotFound", "Instance could not be found"));
            };
            if let Some(name) = body.as_ref().and_then(|b| b["server"]["name"].as_str()) {
                s.name = name.to_owned();
            }
            let s = s.clone();
            ok(json!({"server": server_json(w, &s)}))
        }
        ("PUT", ["servers", sid, "metadata"]) => {
            let Some(s) = w.servers.get_mut(*sid) else {
                return err(error(404, "itemNotFound", "Instance could not be found"));
            };
            let metadata: BTreeMap<String, String> = body
                .and_then(|b| serde_json::from_value(b["metadata"].clone()).ok())
                .unwrap_or_default();
            s.metadata = metadata.clone();
            ok(json!({"metadata": metadata}))
        }
        ("POST", ["servers", sid, "os-volume_attachments"]) => {
            if !w.servers.contains_key(*sid) {
                return err(error(404, "itemNotFound", "Instance could not be found"));
            }
            let vid = body
                .as_ref()
                .and_then(|b| b["volumeAttachment"]["volumeId"].as_str())
                .unwrap_or("")
                .to_owned();
            match w.volumes.get_mut(&vid) {
                None => err(error(
                    404,
                    "itemNotFound",
                    &format!("Volume {vid} could not be found."),
                )),
                Some(v) if v.status != "available" => err(error(
                    400,
                    "badRequest",
                    &format!("Invalid volume: volume {vid} status must be available"),
                )),
                Some(v) => {
                    v.status = "attaching".into();
                    v.attaching_to = Some((*sid).to_owned());
                    ok(json!({"volumeAttachment": {"id": vid, "volumeId": vid,
                        "serverId": sid, "device": "/dev/vdb"}}))
                }
            }
        }
        ("DELETE", ["servers", sid]) => match w.servers.get_mut(*sid) {
            Some(s) => {
                s.task_state = Some("deleting".into());
                s.polls_until_gone.get_or_insert(1);
                reply(204, Value::Null, None, &[])
            }
            None => err(error(404, "itemNotFound", "Instance could not be found")),
        },
        ("POST", ["servers", sid, "action"]) => {
            if !w.servers.contains_key(*sid) {
                return err(error(404, "itemNotFound", "Instance could not be found"));
            }
            let body = body.unwrap_or(Value::Null);
            if let Some(create) = body.get("createImage") {
                return create_image(w, sid, create);
            }
            let length = body["os-getConsoleOutput"]["length"].as_u64().unwrap_or(50) as usize;
            let s = w.servers.get_mut(*sid).unwrap();
            if s.volume_id.is_some() {
                let all = [
                    "FAKE CONSOLE OUTPUT",
                    "Cloud-init v. 24.4 running 'modules:final'",
                    "LAST LINE",
                ];
                let skip = all.len().saturating_sub(length);
                return ok(json!({"output": all[skip..].join("\n")}));
            }
            if s.status == "ACTIVE" {
                match s.script.pop_front() {
                    Some(line) => s.console.push(line),
                    None if s.powers_off => s.status = "SHUTOFF".into(),
                    None => {}
                }
            }
            let skip = s.console.len().saturating_sub(length);
            ok(json!({"output": s.console[skip..].join("\n")}))
        }
        _ => err(error(
            404,
            "itemNotFound",
            "The resource could not be found.",
        )),
    }
}

/// Nova `createImage` at microversion 2.45 or later (the image id in the
/// body). An image-backed server's disk is uploaded to a new Glance image;
/// a volume-backed one gets a Cinder snapshot of its boot volume and an
/// image, active at once, that only points at it (as real Nova does).
pub(super) fn create_image(w: &mut World, sid: &str, create: &Value) -> Response {
    let s = w.servers[sid].clone();
    if !matches!(s.status.as_str(), "ACTIVE" | "SHUTOFF") || s.task_state.is_some() {
        return err(error(
            409,
            "conflictingRequest",
            &format!(
                "Cannot 'createImage' instance {sid} while it is in vm_state {}",
                s.status.to_lowercase()
            ),
        ));
    }
    let image_id = id();
    let mut image = json!({"id": image_id, "name": create["name"], "visibility": "private",
        "disk_format": "qcow2", "container_format": "bare", "min_disk": 80, "min_ram": 0,
        "owner": w.project_id, "instance_uuid": sid});
    match &s.volume_id {
        Some(volume) => {
            if let Some(v) = w.volumes.get_mut(volume) {
                v.snapshots += 1;
            }
            image["status"] = json!("active");
            image["block_device_mapping"] = json!(format!(
                "[{{\"source_type\": \"snapshot\", \"snapshot_id\": \"{}\"}}]",
                id()
            ));
        }
        None => {
            image["status"] = json!("queued");
            let polls = w.snapshot_polls;
            w.image_polls.insert(image_id.clone(), polls);
        }
    }
    w.images.push(image);
    reply(202, json!({"image_id": image_id}), None, &[])
}

/// What Nova does once a server is gone: its boot volume is deleted (if
/// asked) or detached, its port removed, its floating IP disassociated.
/// Cinder refuses to delete a volume with snapshots: it stays, available.
pub(super) fn finish_delete(w: &mut World, s: &FakeServer) {
    let detach_polls = w.detach_polls;
    for v in w.volumes.values_mut() {
        if v.server_id.as_deref() == Some(&s.id) && Some(&v.id) != s.volume_id.as_ref() {
            v.server_id = None;
            v.detach_polls = detach_polls;
            v.status = if detach_polls > 0 {
                "detaching".into()
            } else {
                "available".into()
            };
        }
    }
    if let Some(volume) = &s.volume_id {
        let snapshots = w.volumes.get(volume).map_or(0, |v| v.snapshots);
        if s.delete_on_termination && snapshots == 0 {
            w.volumes.remove(volume);
        } else if let Some(v) = w.volumes.get_mut(volume) {
            v.status = "available".into();
            v.server_id = None;
        }
    }
    for f in w.fips.values_mut() {
        if f.port_id.as_deref() == Some(&s.port_id) {
            f.port_id = None;
        }
    }
}
