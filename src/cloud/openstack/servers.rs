//! Nova: create, show, list, delete servers and read their console.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::{ApiError, ApiErrorKind};
use super::resolve::Resolved;
use super::session::{COMPUTE, NOVA_MICROVERSION};
use crate::cloud::{Server, ServerSpec, ServerStatus};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Nova refuses user data longer than this, base64-encoded.
pub const MAX_USER_DATA_B64: usize = 65_535;
/// Nova's limit on a metadata key or value, in bytes.
const MAX_METADATA_BYTES: usize = 255;

#[derive(Serialize)]
struct CreateRoot<'a> {
    server: Create<'a>,
}

/// The body of `POST /servers` (api-ref: "Create Server"), boot from volume.
#[derive(Serialize)]
struct Create<'a> {
    name: &'a str,
    #[serde(rename = "flavorRef")]
    flavor_ref: &'a str,
    /// Empty for boot from volume: the image is in the block device mapping.
    #[serde(rename = "imageRef")]
    image_ref: &'a str,
    /// The boot volume, then the owner's home volume if there is one.
    block_device_mapping_v2: Vec<BlockDevice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_zone: Option<&'a str>,
    networks: [Nic<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    security_groups: Vec<Named<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_name: Option<&'a str>,
    user_data: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct BlockDevice<'a> {
    /// -1: not a boot device (Nova's "none").
    boot_index: i8,
    uuid: &'a str,
    source_type: &'static str,
    destination_type: &'static str,
    /// For a new volume only; an existing one has its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_size: Option<u32>,
    delete_on_termination: bool,
}

/// The block devices of a VM: a new boot volume from the image, and the
/// owner's home volume as it is, which the server's deletion keeps.
fn block_devices<'a>(image_id: &'a str, spec: &'a ServerSpec) -> Vec<BlockDevice<'a>> {
    let boot = BlockDevice {
        boot_index: 0,
        uuid: image_id,
        source_type: "image",
        destination_type: "volume",
        volume_size: Some(spec.volume_size_gb),
        delete_on_termination: spec.delete_volume_on_termination,
    };
    let home = spec.home_volume.as_deref().map(|id| BlockDevice {
        boot_index: -1,
        uuid: id,
        source_type: "volume",
        destination_type: "volume",
        volume_size: None,
        delete_on_termination: false,
    });
    std::iter::once(boot).chain(home).collect()
}

#[derive(Serialize)]
struct Nic<'a> {
    uuid: &'a str,
}

#[derive(Serialize)]
struct Named<'a> {
    /// Nova takes a security group's id in `name` too; ids are unambiguous.
    name: &'a str,
}

/// Nova's answer to `POST /servers` (a VM's or an image builder's).
#[derive(Deserialize)]
pub(super) struct Created {
    pub(super) server: CreatedServer,
}

#[derive(Deserialize)]
pub(super) struct CreatedServer {
    pub(super) id: String,
}

#[derive(Deserialize)]
struct ServerRoot {
    server: NovaServer,
}

/// A server as Nova shows it (the fields we use). A server of a cell that
/// is down (microversion 2.69) has only a few fields, status `UNKNOWN`:
/// everything but the id and status may be missing.
#[derive(Deserialize)]
pub struct NovaServer {
    id: String,
    #[serde(default)]
    name: String,
    status: String,
    #[serde(default)]
    created: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "OS-EXT-STS:task_state", default)]
    task_state: Option<String>,
    #[serde(default)]
    fault: Option<Fault>,
    #[serde(default)]
    addresses: HashMap<String, Vec<Address>>,
    #[serde(rename = "os-extended-volumes:volumes_attached", default)]
    volumes_attached: Vec<Attached>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Fault {
    message: String,
}

#[derive(Deserialize)]
struct Address {
    addr: String,
    #[serde(rename = "OS-EXT-IPS:type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Attached {
    id: String,
}

#[derive(Deserialize)]
struct Console {
    output: String,
}

impl NovaServer {
    /// Into our own small vocabulary: Nova's ~20 states stay here.
    pub fn into_server(self) -> Server {
        let status = if self.task_state.as_deref() == Some("deleting") {
            ServerStatus::Deleting
        } else {
            match self.status.as_str() {
                "BUILD" | "REBUILD" | "REBOOT" | "HARD_REBOOT" => ServerStatus::Build,
                "ACTIVE" => ServerStatus::Active,
                "ERROR" => ServerStatus::Error,
                "SHUTOFF" | "STOPPED" | "SUSPENDED" | "PAUSED" | "SHELVED"
                | "SHELVED_OFFLOADED" => ServerStatus::Stopped,
                "DELETED" | "SOFT_DELETED" => ServerStatus::Deleting,
                "UNKNOWN" => ServerStatus::Unknown,
                other => ServerStatus::Other(other.to_owned()),
            }
        };
        let mut networks: Vec<(String, Vec<Address>)> = self.addresses.into_iter().collect();
        networks.sort_by(|a, b| a.0.cmp(&b.0));
        let addresses = networks
            .into_iter()
            .flat_map(|(_, a)| a)
            .filter(|a| a.kind.as_deref() != Some("floating"))
            .map(|a| a.addr)
            .collect();
        Server {
            id: self.id,
            name: self.name,
            status,
            fault: self.fault.map(|f| f.message),
            addresses,
            volume_ids: self.volumes_attached.into_iter().map(|v| v.id).collect(),
            metadata: self.metadata,
            created: self.created,
        }
    }
}

/// User data as Nova wants it: base64, within its limit.
pub fn encode_user_data(user_data: &str) -> Result<String, ApiError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_data);
    if encoded.len() > MAX_USER_DATA_B64 {
        return Err(ApiError::new(
            "create the server",
            ApiErrorKind::BadAnswer,
            format!(
                "the user data is {} bytes base64-encoded, over Nova's limit of {MAX_USER_DATA_B64}",
                encoded.len()
            ),
        ));
    }
    Ok(encoded)
}

/// Nova refuses metadata keys or values over 255 bytes; a long repository
/// URL is cut (at a character boundary) rather than failing the launch.
fn fit_metadata(metadata: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .iter()
        .map(|(k, v)| (truncate(k), truncate(v)))
        .collect()
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_METADATA_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_METADATA_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl OpenStackCloud {
    pub(super) async fn post_server(
        &self,
        resolved: &Resolved,
        flavor: &super::resolve::Flavor,
        image_id: &str,
        spec: &ServerSpec,
    ) -> Result<String, ApiError> {
        let body = CreateRoot {
            server: Create {
                name: &spec.name,
                flavor_ref: &flavor.id,
                image_ref: "",
                block_device_mapping_v2: block_devices(image_id, spec),
                availability_zone: spec.availability_zone.as_deref(),
                networks: [Nic {
                    uuid: &resolved.network_id,
                }],
                security_groups: resolved
                    .security_group_ids
                    .iter()
                    .map(|id| Named { name: id })
                    .collect(),
                key_name: resolved.key_name.as_deref(),
                user_data: encode_user_data(&spec.user_data)?,
                metadata: fit_metadata(&spec.metadata),
            },
        };
        let reply = self
            .api
            .call("create the server", Repeat::Once, |r| {
                r.session
                    .post(COMPUTE, ["servers"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&body)
            })
            .await?;
        Ok(reply.json::<Created>()?.server.id)
    }

    pub(super) async fn show_server(&self, id: &str) -> Result<Option<Server>, ApiError> {
        match self
            .api
            .call("look at the server", Repeat::Idempotent, |r| {
                r.session
                    .get(COMPUTE, ["servers", id])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
            })
            .await
        {
            Ok(reply) => Ok(Some(reply.json::<ServerRoot>()?.server.into_server())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every server of the project, with metadata, every page.
    pub(super) async fn list_servers(&self) -> Result<Vec<Server>, ApiError> {
        let servers: Vec<NovaServer> = self
            .list_all("list the servers", "servers", |r, paging| {
                r.session
                    .get(COMPUTE, ["servers", "detail"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .query(paging)
            })
            .await?;
        Ok(servers.into_iter().map(NovaServer::into_server).collect())
    }

    /// Rename the server, then replace its metadata (`PUT`: keys not
    /// given are removed, so a claimed pool VM loses its pool mark).
    pub(super) async fn put_server(
        &self,
        id: &str,
        name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let rename = serde_json::json!({ "server": { "name": name } });
        self.api
            .call("rename the server", Repeat::Idempotent, |r| {
                r.session
                    .put(COMPUTE, ["servers", id])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&rename)
            })
            .await?;
        let marks = serde_json::json!({ "metadata": fit_metadata(metadata) });
        self.api
            .call("replace the server's metadata", Repeat::Idempotent, |r| {
                r.session
                    .put(COMPUTE, ["servers", id, "metadata"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&marks)
            })
            .await?;
        Ok(())
    }

    /// Attach a volume to a running server. Sent once: a second attachment
    /// of the same volume is refused by Nova anyway, and the caller looks at
    /// the volume before asking again.
    pub(super) async fn post_volume_attachment(
        &self,
        server_id: &str,
        volume_id: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({ "volumeAttachment": { "volumeId": volume_id } });
        self.api
            .call("attach the volume", Repeat::Once, |r| {
                r.session
                    .post(COMPUTE, ["servers", server_id, "os-volume_attachments"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&body)
            })
            .await?;
        Ok(())
    }

    pub(super) async fn remove_server(&self, id: &str) -> Result<(), ApiError> {
        match self
            .api
            .call("delete the server", Repeat::Idempotent, |r| {
                r.session
                    .delete(COMPUTE, ["servers", id])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn console(&self, id: &str, lines: u32) -> Result<String, ApiError> {
        let body = serde_json::json!({ "os-getConsoleOutput": { "length": lines } });
        match self
            .api
            .call("read the console", Repeat::Idempotent, |r| {
                r.session
                    .post(COMPUTE, ["servers", id, "action"])
                    .header("OpenStack-API-Version", NOVA_MICROVERSION)
                    .json(&body)
            })
            .await
        {
            Ok(reply) => Ok(reply.json::<Console>()?.output),
            // 409: the server is not running yet (or any more).
            Err(e) if e.status == Some(reqwest::StatusCode::CONFLICT) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_over_novas_limit_is_refused_before_sending() {
        let big = "x".repeat(50_000);
        let e = encode_user_data(&big).unwrap_err();
        assert!(e.detail.contains("65535"), "{e}");
        assert!(encode_user_data("#cloud-config\n").is_ok());
    }

    #[test]
    fn long_metadata_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.len() <= 255 && long.starts_with(&cut));
    }

    #[test]
    fn nova_states_map_to_ours_and_the_fault_is_kept() {
        let s: NovaServer = serde_json::from_value(serde_json::json!({
            "id": "a", "name": "n", "status": "ERROR",
            "fault": {"code": 500, "message": "No valid host was found."},
            "addresses": {"private": [
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "192.0.2.7", "version": 4, "OS-EXT-IPS:type": "floating"}]},
            "os-extended-volumes:volumes_attached": [{"id": "v1", "delete_on_termination": true}]
        }))
        .unwrap();
        let s = s.into_server();
        assert_eq!(s.status, ServerStatus::Error);
        assert_eq!(s.fault.as_deref(), Some("No valid host was found."));
        assert_eq!(s.addresses, ["10.0.0.5"]);
        assert_eq!(s.volume_ids, ["v1"]);
    }

    #[test]
    fn a_server_of_a_down_cell_is_unknown_not_gone() {
        // Nova 2.69's answer for a server whose cell does not answer.
        let s: NovaServer = serde_json::from_value(serde_json::json!({
            "id": "a", "status": "UNKNOWN", "tenant_id": "p",
            "created": "2026-01-01T00:00:00Z", "links": []
        }))
        .unwrap();
        let s = s.into_server();
        assert_eq!(s.status, ServerStatus::Unknown);
        assert!(s.metadata.is_empty() && s.name.is_empty());
        assert!(s.created.is_some());
    }
}
