//! A fake OpenStack on 127.0.0.1 that speaks the wire protocol of the real
//! services, shaped after the api-ref samples: Keystone v3 tokens with a
//! service catalog, Nova v2.1, Cinder v3, Neutron v2.0 and Glance v2. It
//! keeps servers, volumes, ports and floating IPs like the real services
//! do (a boot volume per server, deleted with it when asked), records
//! every call with its body, and injects faults on demand. A server booted
//! from an image (the image builder) prints a console script the test sets,
//! one line per console read, then powers off; `createImage` makes a Glance
//! image that goes queued → saving → active as it is looked at.
//!
//! One file per service (`identity`, `compute`, `volume`, `network`,
//! `image`); `wire` takes and answers a call, `control` is what a test does
//! with the fake; the world they share is here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod compute;
mod control;
mod identity;
mod image;
mod network;
mod volume;
mod wire;

use compute::*;
use identity::*;
use image::*;
use network::*;
use volume::*;
use wire::*;

pub const USERNAME: &str = "demo";
pub const PASSWORD: &str = "secret-password-4f1c";
pub const PROJECT: &str = "demo";
pub const APP_CRED_ID: &str = "0c5e8d7a1b2f4c3d9e8f7a6b5c4d3e2f";
pub const APP_CRED_SECRET: &str = "app-cred-secret-77d1";
pub const IMAGE: &str = "stackbinder-snapshot";
/// The stock image the image build boots.
pub const BASE_IMAGE: &str = "ubuntu-24.04";
pub const FLAVOR: &str = "m1.large";
/// A GPU flavor, and the snapshot with the NVIDIA driver it boots.
pub const GPU_FLAVOR: &str = "g1.gpu";
pub const GPU_IMAGE: &str = "gpu-snapshot";
pub const KEY: &str = "stackbinder-admin";
pub const POOL: &str = "public";
pub const NETWORK: &str = "private";
/// The longest a held floating IP list waits for the others.
const FIP_HOLD: Duration = Duration::from_millis(500);

/// One API call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: &'static str,
    pub method: Method,
    /// The path below the service's endpoint, e.g. `servers/detail`.
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Option<Value>,
    pub headers: HeaderMap,
    /// When it arrived.
    pub at: Instant,
    /// How the token it carries was got (`password` or
    /// `application_credential`): which client sent it, when clients
    /// authenticate differently (the replica tests).
    pub credential: Option<String>,
}

/// A canned answer for the next `times` calls that match.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Method,
    /// Matches when the call's path contains this.
    pub path: &'static str,
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
    pub times: u32,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub volumes: i64,
    pub gigabytes: i64,
    pub floatingips: i64,
}

#[derive(Debug, Clone)]
pub struct FakeServer {
    pub id: String,
    pub name: String,
    pub status: String,
    pub task_state: Option<String>,
    pub fault: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// The boot volume; none for a server booted from an image.
    pub volume_id: Option<String>,
    pub delete_on_termination: bool,
    /// What the console showed so far.
    pub console: Vec<String>,
    /// Lines still to come, one per console read (image-backed servers).
    script: VecDeque<String>,
    /// Power off once the script is printed.
    powers_off: bool,
    pub address: String,
    pub port_id: String,
    polls_until_active: u32,
    polls_until_gone: Option<u32>,
    /// Creation order: Nova lists the newest first.
    seq: u64,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct FakeVolume {
    pub id: String,
    pub size: u64,
    pub status: String,
    pub server_id: Option<String>,
    /// Cinder snapshots of it (createImage of a volume-backed server): it
    /// cannot be deleted while it has any.
    pub snapshots: u32,
    pub metadata: BTreeMap<String, String>,
    pub name: String,
    pub availability_zone: String,
    pub volume_type: String,
    /// GETs of it while `detaching` before it is available.
    pub detach_polls: u32,
    /// The server it is being attached to (`attaching`): Cinder lists the
    /// attachment, and says `in-use`, from the next GET of it on.
    pub attaching_to: Option<String>,
}

impl FakeVolume {
    /// A new volume, in use by `server`.
    fn attached(id: &str, size: u64, server: &str, metadata: BTreeMap<String, String>) -> Self {
        Self {
            id: id.to_owned(),
            size,
            status: "in-use".into(),
            server_id: Some(server.to_owned()),
            snapshots: 0,
            metadata,
            name: String::new(),
            availability_zone: "nova".into(),
            volume_type: "__DEFAULT__".into(),
            detach_polls: 0,
            attaching_to: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeFip {
    pub id: String,
    pub address: String,
    pub port_id: Option<String>,
    pub description: String,
    /// Neutron's `revision_number`, bumped by every change; a PUT with
    /// `If-Match: revision_number=N` is refused (412) when it moved on.
    pub revision: u64,
}

pub struct World {
    pub project_id: String,
    /// How long a token lives.
    pub token_ttl: Duration,
    /// Added before every answer (the benchmark's network).
    pub latency: Duration,
    pub limits: Limits,
    /// Usage outside stackbinder (other servers of the project, say).
    pub extra_instances: i64,
    /// Addresses the pool still has to hand out.
    pub pool_free: Vec<String>,
    /// The fixed address of every new server.
    pub server_address: String,
    /// GETs of a new server before it is ACTIVE.
    pub boot_polls: u32,
    /// The next server goes to ERROR with this fault message.
    pub boot_fault: Option<String>,
    /// What a server booted from an image prints on its console, one line
    /// per console read once ACTIVE...
    pub builder_console: Vec<String>,
    /// ...after which it powers off (SHUTOFF), unless this is false.
    pub builder_powers_off: bool,
    /// GETs of a new snapshot before it is active (queued, then saving).
    pub snapshot_polls: u32,
    /// New snapshots end `killed` instead of active.
    pub snapshot_fails: bool,
    /// The answer to `createImage` comes this long after the image exists.
    pub snapshot_reply_delay: Duration,
    /// Late answers: a call of this method whose path ends with this
    /// takes effect at once and is answered that much later (a client that
    /// dies or is cut off meanwhile never reads the answer).
    pub late_answers: Vec<(Method, String, Duration)>,
    /// GETs left per image still being made.
    image_polls: HashMap<String, u32>,
    /// The most items a list answers with per page (Nova's and Cinder's
    /// `max_limit`, Neutron's pagination), whatever `limit` asks for;
    /// a full page links to the next (`<collection>_links`).
    pub page_size: usize,
    /// Servers left out of the next N lists (`GET servers/detail`), as a
    /// list missing a page or a down cell would: server id → lists.
    pub omit_from_lists: HashMap<String, u32>,
    /// Servers listed as Nova 2.69 lists those of a cell that is down:
    /// id, status `UNKNOWN`, tenant, created and links only.
    pub down_cell: std::collections::HashSet<String>,
    /// The next server created is left out of this many lists.
    pub hide_next_created: u32,
    /// The next `POST /servers` creates the server, then answers 504 (an
    /// answer lost to a timeout or a proxy).
    pub lose_create_answers: u32,
    /// The next boot request of a builder (boot from image) creates it,
    /// then answers 504.
    pub lose_builder_answers: u32,
    /// The next `POST /volumes` creates the volume, then answers 504.
    pub lose_volume_answers: u32,
    /// A volume detached by a server's deletion stays `detaching` for
    /// this many GETs of it (Nova detaches in the background).
    pub detach_polls: u32,
    /// Keep volumes being attached `attaching` (Cinder slow to finish).
    pub hold_attachments: bool,
    /// Keep new volumes `creating` (Cinder slow to make them).
    pub hold_creating: bool,
    next_seq: u64,
    pub networks: Vec<Value>,
    /// Neutron subnets, each with its `network_id` and `cidr`.
    pub subnets: Vec<Value>,
    pub images: Vec<Value>,
    pub servers: BTreeMap<String, FakeServer>,
    pub volumes: BTreeMap<String, FakeVolume>,
    pub fips: BTreeMap<String, FakeFip>,
    pub calls: Vec<Call>,
    /// Keystone authentications: `password` or `application_credential`.
    pub auths: Vec<String>,
    /// Requests refused because their token was unknown or expired.
    pub rejected_tokens: u32,
    faults: Vec<Fault>,
    tokens: HashMap<String, Instant>,
    /// The authentication method each token was issued for.
    token_credentials: HashMap<String, String>,
    sgs: Vec<Value>,
    base: String,
}

/// Floating IP lists to hold together: the barrier, and how many more.
type HeldLists = Mutex<Option<(Arc<tokio::sync::Barrier>, usize)>>;

#[derive(Clone)]
pub struct FakeOpenStack {
    pub base: String,
    world: Arc<Mutex<World>>,
    /// Holds floating IP lists until this many have arrived (then lets
    /// them all answer at once), so concurrent attaches see the same free
    /// address; a client that takes turns never sends them together, so a
    /// held list answers alone after `FIP_HOLD`: (barrier, lists to hold).
    fip_list_barrier: Arc<HeldLists>,
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl World {
    /// The ids of this project's security groups with these names.
    pub fn sgs_named(&self, names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| {
                self.sgs
                    .iter()
                    .find(|g| g["name"] == *n && g["project_id"] == self.project_id.as_str())
                    .expect("the group exists")["id"]
                    .clone()
            })
            .collect()
    }
}

impl World {
    /// Add an ingress TCP rule for `port` to this project's group `group`,
    /// from `remote_ip_prefix` or from the members of `remote_group_id`
    /// (Neutron's fields, as `openstack security group rule create` makes
    /// them); its id.
    pub fn add_sg_rule(
        &mut self,
        group: &str,
        port: u16,
        remote_ip_prefix: Option<&str>,
        remote_group_id: Option<&str>,
    ) -> String {
        let project = self.project_id.clone();
        let sg = self
            .sgs
            .iter_mut()
            .find(|g| g["name"] == group && g["project_id"] == project.as_str())
            .expect("the group exists");
        let rule_id = id();
        let rule = json!({"id": rule_id, "security_group_id": sg["id"], "direction": "ingress",
            "ethertype": "IPv4", "protocol": "tcp", "port_range_min": port, "port_range_max": port,
            "remote_ip_prefix": remote_ip_prefix, "remote_group_id": remote_group_id,
            "remote_address_group_id": null, "project_id": project, "tenant_id": project,
            "description": ""});
        sg["security_group_rules"]
            .as_array_mut()
            .expect("rules")
            .push(rule);
        rule_id
    }

    /// Give the subnet of network `network` this CIDR.
    pub fn set_subnet_cidr(&mut self, network: &str, cidr: &str) {
        let net_id = self
            .networks
            .iter()
            .find(|n| n["name"] == network)
            .expect("the network exists")["id"]
            .clone();
        for s in self
            .subnets
            .iter_mut()
            .filter(|s| s["network_id"] == net_id)
        {
            s["cidr"] = json!(cidr);
        }
    }
}

impl World {
    pub fn faults_clear(&mut self) {
        self.faults.clear();
    }

    /// Keystone revokes every token issued so far (an operator's
    /// `openstack token revoke`, a rotated application credential): each
    /// service answers 401 to them from now on.
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }
}
