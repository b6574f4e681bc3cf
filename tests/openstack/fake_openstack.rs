//! A fake OpenStack on 127.0.0.1 that speaks the wire protocol of the real
//! services, shaped after the api-ref samples: Keystone v3 tokens with a
//! service catalog, Nova v2.1, Cinder v3, Neutron v2.0 and Glance v2. It
//! keeps servers, volumes, ports and floating IPs like the real services
//! do (a boot volume per server, deleted with it when asked), records
//! every call with its body, and injects faults on demand. A server booted
//! from an image (the image builder) prints a console script the test sets,
//! one line per console read, then powers off; `createImage` makes a Glance
//! image that goes queued → saving → active as it is looked at.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

impl FakeOpenStack {
    /// Start on a random port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let project_id = uuid::Uuid::new_v4().simple().to_string();
        let (private_id, public_id) = (id(), id());
        // The VMs' network is this host's loopback network, as their
        // addresses in the tests are (so `check` finds it reachable).
        let private_subnet = json!({"id": id(), "name": "private-subnet", "network_id": private_id,
            "ip_version": 4, "cidr": "127.0.0.0/8", "project_id": project_id});
        let public_subnet = json!({"id": id(), "name": "public-subnet", "network_id": public_id,
            "ip_version": 4, "cidr": "192.0.2.0/24", "project_id": "admin"});
        let private = json!({"id": private_id, "name": NETWORK, "router:external": false, "shared": false,
            "status": "ACTIVE", "admin_state_up": true, "subnets": [private_subnet["id"]], "project_id": project_id});
        let public = json!({"id": public_id, "name": POOL, "router:external": true, "shared": false,
            "status": "ACTIVE", "admin_state_up": true, "subnets": [public_subnet["id"]], "project_id": "admin"});
        let sg = |name: &str, project: &str| {
            json!({"id": id(), "name": name, "description": "", "project_id": project,
                "tenant_id": project, "security_group_rules": [], "stateful": true})
        };
        let world = World {
            project_id: project_id.clone(),
            token_ttl: Duration::from_secs(3600),
            latency: Duration::ZERO,
            limits: Limits {
                instances: 20,
                cores: 80,
                ram: 256_000,
                volumes: 20,
                gigabytes: 4000,
                floatingips: 20,
            },
            extra_instances: 0,
            pool_free: (10..30).map(|i| format!("192.0.2.{i}")).collect(),
            server_address: String::new(),
            boot_polls: 1,
            boot_fault: None,
            builder_console: Vec::new(),
            builder_powers_off: true,
            snapshot_polls: 2,
            snapshot_fails: false,
            snapshot_reply_delay: Duration::ZERO,
            late_answers: Vec::new(),
            image_polls: HashMap::new(),
            page_size: 1000,
            omit_from_lists: HashMap::new(),
            down_cell: Default::default(),
            hide_next_created: 0,
            lose_create_answers: 0,
            lose_builder_answers: 0,
            lose_volume_answers: 0,
            detach_polls: 0,
            hold_attachments: false,
            hold_creating: false,
            next_seq: 0,
            networks: vec![private, public],
            subnets: vec![private_subnet, public_subnet],
            images: vec![
                json!({"id": id(), "name": IMAGE, "status": "active",
                "visibility": "private", "disk_format": "qcow2", "container_format": "bare",
                "min_disk": 20, "min_ram": 0, "size": 3_221_225_472u64, "owner": project_id}),
                json!({"id": id(), "name": BASE_IMAGE, "status": "active",
                "visibility": "public", "disk_format": "qcow2", "container_format": "bare",
                "min_disk": 0, "min_ram": 0, "size": 600_000_000u64, "owner": "admin"}),
            ],
            servers: BTreeMap::new(),
            volumes: BTreeMap::new(),
            fips: BTreeMap::new(),
            calls: Vec::new(),
            auths: Vec::new(),
            rejected_tokens: 0,
            faults: Vec::new(),
            tokens: HashMap::new(),
            token_credentials: HashMap::new(),
            sgs: vec![
                sg("default", &project_id),
                sg("ssh-whitelist", &project_id),
                sg("Open-top", &project_id),
                // Another project's default group, as an admin would see it.
                sg("default", "someone-else"),
            ],
            base: base.clone(),
        };
        let fake = Self {
            base,
            world: Arc::new(Mutex::new(world)),
            fip_list_barrier: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake serves");
        });
        fake
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("fake lock")
    }

    pub fn auth_url(&self) -> String {
        format!("{}/identity", self.base)
    }

    /// The clouds.yaml a real operator would write, with password auth.
    pub fn clouds_yaml_password(&self) -> String {
        format!(
            "clouds:\n  fake:\n    auth_type: password\n    auth:\n      auth_url: {}\n      username: {USERNAME}\n      password: {PASSWORD}\n      project_name: {PROJECT}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n",
            self.auth_url()
        )
    }

    /// The same with an application credential.
    pub fn clouds_yaml_app_credential(&self) -> String {
        format!(
            "clouds:\n  fake:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {APP_CRED_ID}\n      application_credential_secret: {APP_CRED_SECRET}\n    region_name: RegionOne\n",
            self.auth_url()
        )
    }

    /// The next `n` floating IP lists wait for each other and answer
    /// together (concurrent attaches racing for one free address).
    pub fn hold_fip_lists_together(&self, n: usize) {
        *self.fip_list_barrier.lock().unwrap() = Some((Arc::new(tokio::sync::Barrier::new(n)), n));
    }

    /// A server Nova has that stackbinder did not create here (another
    /// installation's, or the operator's): ACTIVE, with `metadata`, and a
    /// boot volume with `volume_metadata`. Its id and its volume's.
    pub fn add_server(
        &self,
        name: &str,
        metadata: BTreeMap<String, String>,
        volume_metadata: BTreeMap<String, String>,
    ) -> (String, String) {
        let mut w = self.world();
        let (server_id, volume_id) = (id(), id());
        let seq = w.next_seq;
        w.next_seq += 1;
        let address = format!("10.0.1.{}", seq % 250 + 1);
        w.volumes.insert(
            volume_id.clone(),
            FakeVolume::attached(&volume_id, 20, &server_id, volume_metadata),
        );
        w.servers.insert(
            server_id.clone(),
            FakeServer {
                id: server_id.clone(),
                name: name.into(),
                status: "ACTIVE".into(),
                task_state: None,
                fault: None,
                metadata,
                volume_id: Some(volume_id.clone()),
                delete_on_termination: true,
                console: Vec::new(),
                script: VecDeque::new(),
                powers_off: false,
                address,
                port_id: id(),
                polls_until_active: 0,
                polls_until_gone: None,
                seq,
                created: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            },
        );
        (server_id, volume_id)
    }

    /// Someone deletes a server outside stackbinder: it is gone at once,
    /// with what Nova does on a delete (boot volume, port, floating IP).
    pub fn remove_server(&self, id: &str) {
        let mut w = self.world();
        let s = w.servers.remove(id).expect("the server exists");
        finish_delete(&mut w, &s);
    }

    /// An operator attaches a volume of their own to `server_id` by hand:
    /// its id.
    pub fn attach_operator_volume(&self, server_id: &str) -> String {
        let volume_id = id();
        self.world().volumes.insert(
            volume_id.clone(),
            FakeVolume::attached(
                &volume_id,
                100,
                server_id,
                BTreeMap::from([("owner".into(), "the operator".into())]),
            ),
        );
        volume_id
    }

    /// A floating IP allocated outside stackbinder, described
    /// `description`, attached to nothing: its id.
    pub fn add_fip(&self, description: &str) -> String {
        let mut w = self.world();
        let address = w.pool_free.pop().expect("a free address in the pool");
        let f = FakeFip {
            id: id(),
            address,
            port_id: None,
            description: description.into(),
            revision: 1,
        };
        w.fips.insert(f.id.clone(), f.clone());
        f.id
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// Calls per service since `from` (an index into `calls()`).
    pub fn count_by_service(&self, from: usize) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for c in &self.world().calls[from..] {
            *counts.entry(c.service).or_default() += 1;
        }
        counts
    }

    pub fn find_calls(&self, method: Method, path_contains: &str) -> Vec<Call> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.contains(path_contains))
            .cloned()
            .collect()
    }

    /// The bodies of `POST /volumes` Cinder received, in order.
    pub fn volume_creates(&self) -> Vec<Value> {
        self.find_calls(Method::POST, "volumes")
            .into_iter()
            .filter(|c| c.path == "volumes")
            .map(|c| c.body.expect("a body")["volume"].clone())
            .collect()
    }

    pub fn server_count(&self) -> usize {
        self.world().servers.len()
    }

    pub fn volume_count(&self) -> usize {
        self.world().volumes.len()
    }

    /// The images Glance holds now, as it shows them.
    pub fn images(&self) -> Vec<Value> {
        self.world().images.clone()
    }

    pub fn fips(&self) -> Vec<FakeFip> {
        self.world().fips.values().cloned().collect()
    }

    /// Add an active image of the project (a launch profile's); its id.
    pub fn add_image(&self, name: &str) -> String {
        let mut w = self.world();
        let (image_id, project) = (id(), w.project_id.clone());
        w.images
            .push(json!({"id": image_id, "name": name, "status": "active",
            "visibility": "private", "disk_format": "qcow2", "container_format": "bare",
            "min_disk": 20, "min_ram": 0, "size": 9_221_225_472u64, "owner": project}));
        image_id
    }

    /// Add another project network (so the cloud cannot choose).
    pub fn add_network(&self, name: &str) {
        let mut w = self.world();
        let project = w.project_id.clone();
        w.networks
            .push(json!({"id": id(), "name": name, "router:external": false,
            "shared": false, "status": "ACTIVE", "subnets": [id()], "project_id": project}));
    }

    /// The user data of the `index`th server created, decoded.
    pub fn user_data(&self, index: usize) -> String {
        let creates = self.find_calls(Method::POST, "servers");
        let creates: Vec<&Call> = creates.iter().filter(|c| c.path == "servers").collect();
        let b64 = creates[index].body.as_ref().unwrap()["server"]["user_data"]
            .as_str()
            .expect("user_data is a string")
            .to_owned();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("user_data is base64");
        String::from_utf8(bytes).expect("user_data is UTF-8")
    }
}

fn error(status: u16, wrapper: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({ wrapper: {"code": status, "message": message} }),
    )
}

fn neutron_error(status: u16, kind: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"NeutronError": {"type": kind, "message": message, "detail": ""}}),
    )
}

async fn handle(
    State(fake): State<FakeOpenStack>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = fake.world().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if method == Method::GET && uri.path().ends_with("/floatingips") {
        let held = {
            let mut slot = fake.fip_list_barrier.lock().unwrap();
            let held = slot.as_ref().map(|(b, _)| b.clone());
            if let Some((_, left)) = slot.as_mut() {
                *left -= 1;
                if *left == 0 {
                    *slot = None;
                }
            }
            held
        };
        if let Some(barrier) = held {
            let _ = tokio::time::timeout(FIP_HOLD, barrier.wait()).await;
        }
    }
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let snapshot = body
        .as_ref()
        .is_some_and(|b| b.get("createImage").is_some());
    let late = fake
        .world()
        .late_answers
        .iter()
        .find(|(m, suffix, _)| *m == method && uri.path().ends_with(suffix.as_str()))
        .map(|(_, _, delay)| *delay);
    let response = answer(&fake, method, uri, headers, body);
    let delay = match late {
        Some(delay) => delay,
        None if snapshot => fake.world().snapshot_reply_delay,
        None => Duration::ZERO,
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The answer to one call, from the world as it is.
fn answer(
    fake: &FakeOpenStack,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Option<Value>,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let path = uri.path().trim_end_matches('/').trim_start_matches('/');
    let mut w = fake.world();
    let project = w.project_id.clone();
    let (service, rest): (&'static str, String) = if let Some(r) = path.strip_prefix("identity") {
        ("identity", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("compute/v2.1") {
        ("compute", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix(&format!("volume/v3/{project}")) {
        ("volume", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("network") {
        ("network", r.trim_start_matches('/').to_owned())
    } else if let Some(r) = path.strip_prefix("image") {
        ("image", r.trim_start_matches('/').to_owned())
    } else {
        return (StatusCode::NOT_FOUND, "no such service").into_response();
    };
    let credential = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|token| w.token_credentials.get(token).cloned());
    w.calls.push(Call {
        service,
        method: method.clone(),
        path: rest.clone(),
        query: query.clone(),
        body: body.clone(),
        headers: headers.clone(),
        at: Instant::now(),
        credential,
    });
    if !(service == "identity" && method == Method::POST) {
        let token = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let alive = w.tokens.get(token).is_some_and(|exp| *exp > Instant::now());
        if !alive {
            w.rejected_tokens += 1;
            let (s, v) = error(
                401,
                "error",
                "The request you have made requires authentication.",
            );
            return reply(s, v, None, &[]);
        }
    }
    if let Some(i) = w
        .faults
        .iter()
        .position(|f| f.method == method && rest.contains(f.path) && f.times > 0)
    {
        let f = &mut w.faults[i];
        f.times -= 1;
        let (status, body, retry) = (f.status, f.body.clone(), f.retry_after);
        if f.times == 0 {
            w.faults.remove(i);
        }
        return reply(status, body, retry, &[]);
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match service {
        "identity" => identity(&mut w, &method, &segments, body, &headers),
        "compute" => compute(&mut w, &method, &segments, &query, body),
        "volume" => volume(&mut w, &method, &segments, &query, body),
        "network" => network(&mut w, &method, &segments, &query, body, &headers),
        _ => image(&mut w, &method, &segments, &query),
    }
}

fn reply(
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    headers: &[(&str, String)],
) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
        .into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    for (k, v) in headers {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

fn ok(body: Value) -> Response {
    reply(200, body, None, &[])
}

fn err((status, body): (u16, Value)) -> Response {
    reply(status, body, None, &[])
}

/// Keystone v3: POST /v3/auth/tokens (password or application credential)
/// and GET /v3/auth/tokens (introspection of X-Subject-Token).
fn identity(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    body: Option<Value>,
    headers: &HeaderMap,
) -> Response {
    if seg != ["v3", "auth", "tokens"] {
        return err(error(404, "error", "not found"));
    }
    if *method == Method::GET {
        let subject = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !w.tokens.contains_key(subject) {
            return err(error(404, "error", "Could not find token."));
        }
        return ok(token_body(w, "password"));
    }
    let body = body.unwrap_or(Value::Null);
    let identity = &body["auth"]["identity"];
    let method_name = identity["methods"][0].as_str().unwrap_or("").to_owned();
    let good = match method_name.as_str() {
        "password" => {
            let user = &identity["password"]["user"];
            user["name"] == USERNAME
                && user["password"] == PASSWORD
                && body["auth"]["scope"]["project"]["name"] == PROJECT
        }
        "application_credential" => {
            let cred = &identity["application_credential"];
            cred["id"] == APP_CRED_ID && cred["secret"] == APP_CRED_SECRET
        }
        _ => false,
    };
    if !good {
        return err(error(
            401,
            "error",
            "The request you have made requires authentication.",
        ));
    }
    w.auths.push(method_name.clone());
    let token = format!("gAAAAAB{}", uuid::Uuid::new_v4().simple());
    w.tokens.insert(token.clone(), Instant::now() + w.token_ttl);
    w.token_credentials
        .insert(token.clone(), method_name.clone());
    reply(
        201,
        token_body(w, &method_name),
        None,
        &[("x-subject-token", token)],
    )
}

fn token_body(w: &World, method: &str) -> Value {
    let expires = chrono::Utc::now() + chrono::Duration::from_std(w.token_ttl).unwrap();
    let endpoint = |kind: &str, name: &str, url: String| {
        json!({"type": kind, "name": name, "id": id(), "endpoints": [
            {"id": id(), "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": url},
            {"id": id(), "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": url}
        ]})
    };
    let b = &w.base;
    json!({"token": {
        "methods": [method],
        "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "issued_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "user": {"id": "u1", "name": USERNAME, "domain": {"id": "default", "name": "Default"}},
        "project": {"id": w.project_id, "name": PROJECT, "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": [
            endpoint("identity", "keystone", format!("{b}/identity")),
            endpoint("compute", "nova", format!("{b}/compute/v2.1")),
            endpoint("block-storage", "cinder", format!("{b}/volume/v3/{}", w.project_id)),
            endpoint("network", "neutron", format!("{b}/network")),
            endpoint("image", "glance", format!("{b}/image")),
        ]
    }})
}

fn server_json(w: &World, s: &FakeServer) -> Value {
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

/// Nova v2.1.
/// One page of `items` (each with an `id`, in list order) as the query
/// asks for (`limit`, `marker`), capped at the world's page size; a full
/// page links to the next under `<key>_links`, as Nova, Cinder and Neutron
/// do. An unknown marker is a 400, as in Nova.
fn page(
    w: &World,
    key: &str,
    path: &str,
    items: Vec<Value>,
    query: &HashMap<String, String>,
) -> Response {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .min(w.page_size);
    let start = match query.get("marker") {
        None => 0,
        Some(m) => match items.iter().position(|i| i["id"] == m.as_str()) {
            Some(i) => i + 1,
            None => return err(error(400, "badRequest", &format!("marker [{m}] not found"))),
        },
    };
    let batch: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let mut links = Vec::new();
    if batch.len() == limit
        && let Some(last) = batch.last()
    {
        let href = format!(
            "{}/{path}?limit={limit}&marker={}",
            w.base,
            last["id"].as_str().unwrap_or_default()
        );
        links.push(json!({"rel": "next", "href": href}));
    }
    ok(json!({ key: batch, format!("{key}_links"): links }))
}

fn compute(
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
fn create_image(w: &mut World, sid: &str, create: &Value) -> Response {
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
fn finish_delete(w: &mut World, s: &FakeServer) {
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

/// Cinder v3 (below `/v3/{project_id}`).
fn volume(
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
fn volume_json(v: &FakeVolume) -> Value {
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

fn fip_json(w: &World, f: &FakeFip) -> Value {
    let pool = w.networks.iter().find(|n| n["name"] == POOL).unwrap()["id"].clone();
    json!({"id": f.id, "floating_ip_address": f.address, "floating_network_id": pool,
        "port_id": f.port_id, "fixed_ip_address": Value::Null, "router_id": Value::Null,
        "status": if f.port_id.is_some() { "ACTIVE" } else { "DOWN" },
        "project_id": w.project_id, "tenant_id": w.project_id, "description": f.description,
        "tags": [], "revision_number": f.revision})
}

/// Neutron: version discovery at the root, then v2.0.
fn network(
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

/// Glance: version discovery at the root, then v2. A snapshot being made
/// moves on (queued → saving → active, or killed) as it is looked at.
fn image(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
) -> Response {
    if seg.is_empty() {
        return ok(json!({"versions": [{"id": "v2.16", "status": "CURRENT",
            "links": [{"href": format!("{}/image/v2/", w.base), "rel": "self"}]}]}));
    }
    match (method.as_str(), &seg[1..]) {
        ("GET", ["images"]) => {
            let images: Vec<&Value> = w
                .images
                .iter()
                .filter(|i| query.get("name").is_none_or(|n| i["name"] == n.as_str()))
                .collect();
            ok(json!({"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"}))
        }
        ("GET", ["images", iid]) => {
            let Some(i) = w.images.iter().position(|i| i["id"] == *iid) else {
                return reply(404, Value::Null, None, &[]);
            };
            if let Some(left) = w.image_polls.get_mut(*iid) {
                let status = if *left == 0 {
                    w.image_polls.remove(*iid);
                    if w.snapshot_fails { "killed" } else { "active" }
                } else {
                    *left -= 1;
                    "saving"
                };
                w.images[i]["status"] = json!(status);
            }
            ok(w.images[i].clone())
        }
        ("DELETE", ["images", iid]) => match w.images.iter().position(|i| i["id"] == *iid) {
            Some(i) => {
                w.images.remove(i);
                w.image_polls.remove(*iid);
                reply(204, Value::Null, None, &[])
            }
            None => reply(404, Value::Null, None, &[]),
        },
        _ => reply(404, Value::Null, None, &[]),
    }
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
