//! Cinder v3.

use super::*;

/// Cinder v3 (below `/v3/{project_id}`).
pub(super) fn volume(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
    body: Option<Value>,
) -> Response {
    match (method.as_str(), seg) {
        ("GET", ["volumes", "detail"]) => {
            let volumes: Vec<Value> = w.volumes.values().map(volume_json).collect();
            let project = w.project_id.clone();
            page(
                w,
                "volumes",
                &format!("volume/v3/{project}/volumes/detail"),
                volumes,
                query,
            )
        }
        // Cinder "Create metadata for volume": merged into what is there.
        ("POST", ["volumes", vid, "metadata"]) => {
            let Some(v) = w.volumes.get_mut(*vid) else {
                return err(error(
                    404,
                    "itemNotFound",
                    &format!("Volume {vid} could not be found."),
                ));
            };
            let add: BTreeMap<String, String> = body
                .and_then(|b| serde_json::from_value(b["metadata"].clone()).ok())
                .unwrap_or_default();
            v.metadata.extend(add);
            ok(json!({"metadata": v.metadata}))
        }
        // Cinder "Create a volume": 202, `creating` until it is looked at.
        ("POST", ["volumes"]) => {
            let body = body.unwrap_or(Value::Null);
            let v = &body["volume"];
            let size = v["size"].as_u64().unwrap_or(0);
            let gb: u64 = w.volumes.values().map(|v| v.size).sum();
            if w.volumes.len() as i64 >= w.limits.volumes || (gb + size) as i64 > w.limits.gigabytes
            {
                return err(error(
                    413,
                    "overLimit",
                    "VolumeLimitExceeded: Maximum number of volumes allowed (20) exceeded for quota 'volumes'.",
                ));
            }
            let vid = id();
            let volume = FakeVolume {
                id: vid.clone(),
                size,
                status: "creating".into(),
                server_id: None,
                snapshots: 0,
                metadata: serde_json::from_value(v["metadata"].clone()).unwrap_or_default(),
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                availability_zone: v["availability_zone"].as_str().unwrap_or("nova").to_owned(),
                volume_type: v["volume_type"]
                    .as_str()
                    .unwrap_or("__DEFAULT__")
                    .to_owned(),
                detach_polls: 0,
                attaching_to: None,
            };
            let answer = volume_json(&volume);
            w.volumes.insert(vid, volume);
            if w.lose_volume_answers > 0 {
                w.lose_volume_answers -= 1;
                return err(error(504, "computeFault", "Gateway Time-out"));
            }
            reply(202, json!({"volume": answer}), None, &[])
        }
        ("GET", ["volumes", vid]) => {
            let (hold, hold_creating) = (w.hold_attachments, w.hold_creating);
            let Some(v) = w.volumes.get_mut(*vid) else {
                return err(error(
                    404,
                    "itemNotFound",
                    &format!("Volume {vid} could not be found."),
                ));
            };
            match v.status.as_str() {
                "creating" if !hold_creating => v.status = "available".into(),
                // The attachment of the POST before this GET is done.
                "attaching" if !hold => {
                    v.status = "in-use".into();
                    v.server_id = v.attaching_to.take();
                }
                "detaching" if v.detach_polls == 0 => v.status = "available".into(),
                "detaching" => v.detach_polls -= 1,
                _ => {}
            }
            ok(json!({"volume": volume_json(v)}))
        }
        ("DELETE", ["volumes", vid]) => match w.volumes.get(*vid) {
            None => err(error(
                404,
                "itemNotFound",
                &format!("Volume {vid} could not be found."),
            )),
            Some(v) if v.status != "available" || v.snapshots > 0 => err(error(
                400,
                "badRequest",
                "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.",
            )),
            Some(_) => {
                w.volumes.remove(*vid);
                reply(202, Value::Null, None, &[])
            }
        },
        // Cinder's volume types and availability zones (api-ref samples).
        ("GET", ["types"]) => ok(json!({"volume_types": [
            {"id": "6685584b-1eac-4da6-b5c3-555430cf68ff", "name": "__DEFAULT__",
             "is_public": true, "extra_specs": {}},
            {"id": "8eb69a46-df97-4e41-9586-9a40a7533803", "name": "ssd",
             "is_public": true, "extra_specs": {}},
        ]})),
        ("GET", ["os-availability-zone"]) => ok(json!({"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": true}},
        ]})),
        ("GET", ["limits"]) => {
            let gb: u64 = w.volumes.values().map(|v| v.size).sum();
            ok(json!({"limits": {"rate": [], "absolute": {
                "maxTotalVolumes": w.limits.volumes, "totalVolumesUsed": w.volumes.len(),
                "maxTotalVolumeGigabytes": w.limits.gigabytes, "totalGigabytesUsed": gb,
                "maxTotalSnapshots": 10, "totalSnapshotsUsed": 0,
                "maxTotalBackups": 10, "totalBackupsUsed": 0,
                "maxTotalBackupGigabytes": 1000, "totalBackupGigabytesUsed": 0
            }}}))
        }
        _ => err(error(
            404,
            "itemNotFound",
            "The resource could not be found.",
        )),
    }
}

/// A volume as Cinder v3 shows it (api-ref: "Show a volume's details").
pub(super) fn volume_json(v: &FakeVolume) -> Value {
    json!({
        "id": v.id, "name": v.name, "status": v.status, "size": v.size,
        "bootable": if v.name.is_empty() { "true" } else { "false" },
        "metadata": v.metadata, "availability_zone": v.availability_zone,
        "volume_type": v.volume_type, "multiattach": false, "encrypted": false,
        "created_at": "2026-01-01T00:00:00.000000", "links": [],
        "attachments": v.server_id.iter().map(|s| json!({"server_id": s, "attachment_id": id(),
            "volume_id": v.id, "device": "/dev/vdb", "id": v.id,
            "attached_at": "2026-01-01T00:00:00.000000", "host_name": null}))
            .collect::<Vec<_>>(),
    })
}
