//! A cloud in this process that behaves like Nova, Cinder and Neutron as
//! stackbinder sees them: servers go BUILD → ACTIVE after a delay (or ERROR
//! with a fault, on demand), boot volumes come and go with their server,
//! floating IPs come from a finite pool, and the console output grows.
//! Once ACTIVE, a simulated VM runs the launch the way the real launch
//! script does: it reports progress to stackbinder over HTTP and serves a
//! small Jupyter stand-in on its own loopback address. An image builder
//! prints the build's progress and verdict on its console and powers off;
//! its snapshot is saving for a moment, then active.

mod builder_console;
mod launch_script;
mod real_jupyter;

use builder_console::BuilderScript;
use launch_script::VmScript;
use super::{
    BuilderSpec, CheckItem, Cloud, CloudError, CloudResult, FloatingIp, Image, ImageStatus,
    InstallationId, META_IMAGE_BUILD, META_VM, Owned, Server, ServerSpec, ServerStatus,
};
use crate::cloud_init;
use crate::config::SimulatorConfig;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Nova's limit on user data, base64-encoded.
const MAX_USER_DATA_B64: usize = 65_535;

/// Timings of the simulated cloud and VMs.
#[derive(Debug, Clone)]
pub struct Timings {
    pub boot: Duration,
    pub clone: Duration,
    pub build: Duration,
    pub start: Duration,
    pub delete: Duration,
}

impl Timings {
    pub fn from_config(c: &SimulatorConfig) -> Self {
        let d = |s: f64| Duration::from_secs_f64(s.max(0.0));
        Self {
            boot: d(c.boot_seconds),
            clone: d(c.clone_seconds),
            build: d(c.build_seconds),
            start: d(c.start_seconds),
            delete: d(c.delete_seconds),
        }
    }

    /// Fast enough for tests, slow enough to observe each state.
    pub fn quick() -> Self {
        let ms = Duration::from_millis;
        Self {
            boot: ms(150),
            clone: ms(100),
            build: ms(150),
            start: ms(100),
            delete: ms(150),
        }
    }
}

/// What the next launch should go through (tests and fault drills).
#[derive(Debug, Clone)]
pub enum Scenario {
    /// The server goes to ERROR with this fault message instead of ACTIVE.
    BootFault(String),
    /// repo2docker fails: the VM reports `failed` after these log lines.
    BuildFails(Vec<String>),
    /// The VM reports `ready`, but nothing answers on Jupyter's port.
    JupyterNeverAnswers,
    /// The server is created but the answer is lost (a timeout or a crash
    /// between the cloud's yes and our record of it).
    LoseCreateResponse,
    /// The next image builder's build script fails at this step.
    ImageBuildFails(String),
    /// The next image builder never powers off.
    ImageBuildHangs,
    /// The next snapshot ends `killed` instead of active.
    SnapshotFails,
    /// The VM's address is this one's IP and it reports `ready` with this
    /// port, where a Jupyter started by the test listens (a real
    /// jupyter-server): the VM serves no stand-in of its own.
    ExternalJupyter(std::net::SocketAddrV4),
}

/// An operation of the cloud API, for counting calls and injecting failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    CreateServer,
    GetServer,
    ConsoleOutput,
    AttachFloatingIp,
    DeleteServer,
    DeleteVolume,
    ReleaseFloatingIp,
    TagVolume,
    ListOwned,
    CreateBuilder,
    CreateImage,
    GetImage,
    DeleteImage,
}

/// A floating IP of the project, as Neutron keeps it.
struct SimFip {
    address: String,
    /// The server it is attached to.
    attached: Option<String>,
    /// The installation its description names; `None` for one an operator
    /// allocated by hand.
    owner: Option<String>,
}

/// An image being made from a server, or made.
struct SimImage {
    image: Image,
    /// When a pending image settles.
    ready_at: Instant,
    /// Settles as `killed` instead of active.
    fails: bool,
}

struct SimServer {
    server: Server,
    spec: ServerSpec,
    delete_at: Option<Instant>,
    console: Arc<Mutex<Vec<String>>>,
    vm: Option<JoinHandle<()>>,
    fip_listener: Option<JoinHandle<()>>,
    floating_ip: Option<String>,
    jupyter: Option<launch_script::Jupyter>,
}

#[derive(Default)]
struct State {
    servers: HashMap<String, SimServer>,
    /// volume id → server id it is attached to (None: available).
    volumes: BTreeMap<String, Option<String>>,
    /// volume id → the installation its metadata names (Cinder metadata).
    volume_owners: HashMap<String, String>,
    floating_ips: BTreeMap<String, SimFip>,
    created: Vec<ServerSpec>,
    builders: Vec<BuilderSpec>,
    images: BTreeMap<String, SimImage>,
    calls: HashMap<Op, u64>,
    failures: HashMap<Op, u32>,
    /// Calls that take effect but whose answer is lost.
    lost_answers: HashMap<Op, u32>,
    /// Servers asked to be deleted stay in DELETING for ever.
    stuck_deletes: bool,
    scenarios: VecDeque<Scenario>,
}

/// Cheap to clone: clones share the same simulated cloud.
#[derive(Clone)]
pub struct SimulatedCloud {
    state: Arc<Mutex<State>>,
    timings: Timings,
    floating_ip_capacity: usize,
    http: reqwest::Client,
    /// A real JupyterLab to run on each VM instead of the stand-in.
    jupyter_command: Vec<String>,
}

impl SimulatedCloud {
    pub fn new(timings: Timings, floating_ip_capacity: usize) -> Self {
        Self {
            state: Arc::default(),
            timings,
            floating_ip_capacity,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a plain HTTP client builds"),
            jupyter_command: Vec::new(),
        }
    }

    /// Each VM runs this real JupyterLab command (`simulator.jupyter_command`)
    /// instead of the stand-in; empty: the stand-in.
    pub fn with_jupyter_command(mut self, command: Vec<String>) -> Self {
        self.jupyter_command = command;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("simulated cloud lock")
    }

    /// The next launch goes through `scenario` instead of succeeding.
    pub fn push_scenario(&self, scenario: Scenario) {
        self.lock().scenarios.push_back(scenario);
    }

    /// The next `times` calls of `op` fail as if the API were down.
    pub fn fail_next(&self, op: Op, times: u32) {
        self.lock().failures.insert(op, times);
    }

    /// The next `times` calls of `op` take effect, but their answer is
    /// lost (a timeout, or a crash before the caller recorded it).
    pub fn lose_answer(&self, op: Op, times: u32) {
        self.lock().lost_answers.insert(op, times);
    }

    /// While on, deleted servers stay in DELETING (a stuck compute host).
    pub fn set_stuck_deletes(&self, stuck: bool) {
        let mut st = self.lock();
        st.stuck_deletes = stuck;
        if !stuck {
            let now = Instant::now();
            for sim in st.servers.values_mut() {
                if sim.server.status == ServerStatus::Deleting && sim.delete_at.is_none() {
                    sim.delete_at = Some(now);
                }
            }
        }
    }

    /// Make every running VM's Jupyter report its last activity at `at`.
    pub fn set_jupyter_last_activity(&self, at: chrono::DateTime<chrono::Utc>) {
        for sim in self.lock().servers.values() {
            if let Some(jupyter) = &sim.jupyter {
                jupyter.set_last_activity(at);
            }
        }
    }

    /// Hand back `value`, unless the answer to `op` is to be lost.
    fn deliver<T>(&self, op: Op, value: T) -> CloudResult<T> {
        let mut st = self.lock();
        if let Some(left) = st.lost_answers.get_mut(&op).filter(|n| **n > 0) {
            *left -= 1;
            return Err(CloudError::Unavailable(format!(
                "simulated timeout: {op:?} took effect but the answer was lost"
            )));
        }
        Ok(value)
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: Op) -> u64 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every server spec the cloud accepted, in order.
    pub fn created(&self) -> Vec<ServerSpec> {
        self.lock().created.clone()
    }

    pub fn server_count(&self) -> usize {
        self.reap();
        self.lock().servers.len()
    }

    pub fn volume_count(&self) -> usize {
        self.reap();
        self.lock().volumes.len()
    }

    /// Every image builder the cloud booted, in order.
    pub fn builders(&self) -> Vec<BuilderSpec> {
        self.lock().builders.clone()
    }

    /// The images made with `create_image` that still exist.
    pub fn images(&self) -> Vec<Image> {
        let mut st = self.lock();
        let now = Instant::now();
        st.images
            .values_mut()
            .map(|i| i.settle(now).clone())
            .collect()
    }

    pub fn floating_ip_count(&self) -> usize {
        self.lock().floating_ips.len()
    }

    /// An operator allocates a floating IP by hand (no installation's):
    /// its id. Stackbinder must never take or release it.
    pub fn add_operator_floating_ip(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let fip = SimFip {
            address: Self::next_address().to_string(),
            attached: None,
            owner: None,
        };
        self.lock().floating_ips.insert(id.clone(), fip);
        id
    }

    /// Whether the floating IP `id` still exists, and the server it is on.
    pub fn floating_ip_attachment(&self, id: &str) -> Option<Option<String>> {
        self.lock().floating_ips.get(id).map(|f| f.attached.clone())
    }

    /// An operator attaches a new volume to `server_id` by hand: its id.
    pub fn attach_operator_volume(&self, server_id: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut st = self.lock();
        st.volumes.insert(id.clone(), Some(server_id.to_owned()));
        if let Some(sim) = st.servers.get_mut(server_id) {
            sim.server.volume_ids.push(id.clone());
        }
        id
    }

    /// Whether the volume `id` exists.
    pub fn has_volume(&self, id: &str) -> bool {
        self.reap();
        self.lock().volumes.contains_key(id)
    }

    /// Count a call and fail it if a failure was injected.
    fn enter(&self, op: Op) -> CloudResult<()> {
        let mut st = self.lock();
        *st.calls.entry(op).or_default() += 1;
        if let Some(left) = st.failures.get_mut(&op).filter(|n| **n > 0) {
            *left -= 1;
            return Err(CloudError::Unavailable(format!(
                "simulated outage of {op:?} (503 Service Unavailable)"
            )));
        }
        Ok(())
    }

    /// Finish deletions whose time has come, as Nova does in the background.
    fn reap(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        let gone: Vec<String> = st
            .servers
            .iter()
            .filter(|(_, s)| s.delete_at.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let Some(sim) = st.servers.remove(&id) else {
                continue;
            };
            for handle in [sim.vm, sim.fip_listener].into_iter().flatten() {
                handle.abort();
            }
            for (i, vol) in sim.server.volume_ids.iter().enumerate() {
                if i == 0 && sim.spec.delete_volume_on_termination {
                    st.volumes.remove(vol);
                    st.volume_owners.remove(vol);
                } else if let Some(attached) = st.volumes.get_mut(vol) {
                    *attached = None;
                }
            }
            for fip in st.floating_ips.values_mut() {
                if fip.attached.as_deref() == Some(id.as_str()) {
                    fip.attached = None;
                }
            }
        }
    }

    /// A loopback address of its own for each server and floating IP
    /// (Linux routes all of 127.0.0.0/8 to the loopback interface), so each
    /// VM's Jupyter can listen on the real Jupyter port. The counter is
    /// shared by every simulated cloud in the process and starts at a random
    /// point, so parallel tests and a running demo rarely meet.
    fn next_address() -> Ipv4Addr {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
        let counter = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % 0x00fd_0000));
        let n = counter.fetch_add(1, Ordering::Relaxed) % 0x00fd_0000;
        // 127.1.0.1 ... 127.253.255.254, skipping .0 and .255 host bytes.
        let [_, b, c, d] = (0x0001_0000 + n).to_be_bytes();
        Ipv4Addr::new(127, b, c, d.clamp(1, 254))
    }

    /// Boot: after the delay the server is ACTIVE (or ERROR) and its VM starts.
    async fn boot(self, id: String, scenario: Option<Scenario>) {
        tokio::time::sleep(self.timings.boot).await;
        let started = {
            let mut st = self.lock();
            let Some(sim) = st.servers.get_mut(&id) else {
                return;
            };
            if sim.delete_at.is_some() {
                return;
            }
            if let Some(Scenario::BootFault(fault)) = &scenario {
                sim.server.status = ServerStatus::Error;
                sim.server.fault = Some(fault.clone());
                return;
            }
            // The VM's Jupyter exists before anyone can see the server
            // ACTIVE, so a floating IP attached right away reaches it too.
            let data = cloud_init::parse_launch_data(&sim.spec.user_data);
            sim.jupyter = data.as_ref().map(launch_script::Jupyter::new);
            sim.server.status = ServerStatus::Active;
            let address = sim
                .server
                .addresses
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or(Ipv4Addr::LOCALHOST);
            (data, sim.jupyter.clone(), address, sim.console.clone())
        };
        let (data, jupyter, address, console) = started;
        push_console(
            &console,
            "[    0.000000] Linux version 6.8.0-simulated (stackbinder simulator)",
        );
        push_console(&console, "Cloud-init v. 24.4 running 'modules:final'");
        let (Some(data), Some(jupyter)) = (data, jupyter) else {
            push_console(
                &console,
                "stackbinder: no launch data in the user data; nothing to run",
            );
            return;
        };
        let script = match scenario {
            Some(Scenario::BuildFails(lines)) => VmScript::BuildFails(lines),
            Some(Scenario::JupyterNeverAnswers) => VmScript::JupyterNeverAnswers,
            Some(Scenario::ExternalJupyter(at)) => VmScript::ExternalJupyter(at.port()),
            _ if !self.jupyter_command.is_empty() => {
                VmScript::RealJupyter(self.jupyter_command.clone())
            }
            _ => VmScript::Succeeds,
        };
        launch_script::run(
            self.http.clone(),
            data,
            address,
            jupyter,
            script,
            self.timings.clone(),
            console,
        )
        .await;
    }
}

impl SimServer {
    fn new(id: &str, spec: ServerSpec, address: Ipv4Addr, volume_ids: Vec<String>) -> Self {
        Self {
            server: Server {
                id: id.to_owned(),
                name: spec.name.clone(),
                status: ServerStatus::Build,
                fault: None,
                addresses: vec![address.to_string()],
                volume_ids,
                metadata: spec.metadata.clone(),
                created: Some(chrono::Utc::now()),
            },
            spec,
            delete_at: None,
            console: Arc::default(),
            vm: None,
            fip_listener: None,
            floating_ip: None,
            jupyter: None,
        }
    }
}

impl SimImage {
    /// The image as Glance shows it at `now`.
    fn settle(&mut self, now: Instant) -> &Image {
        if matches!(self.image.status, ImageStatus::Pending(_)) && now >= self.ready_at {
            self.image.status = if self.fails {
                ImageStatus::Failed("killed".into())
            } else {
                ImageStatus::Active
            };
        }
        &self.image
    }
}

impl SimulatedCloud {
    /// The builder boots, prints the build on its console over
    /// `timings.build`, and powers off (unless told to hang).
    async fn run_builder(self, id: String, script: BuilderScript) {
        tokio::time::sleep(self.timings.boot).await;
        let (console, user_data) = {
            let mut st = self.lock();
            let Some(sim) = st.servers.get_mut(&id) else {
                return;
            };
            if sim.delete_at.is_some() {
                return;
            }
            sim.server.status = ServerStatus::Active;
            (sim.console.clone(), sim.spec.user_data.clone())
        };
        let (lines, powers_off) = builder_console::console_lines(&user_data, &script);
        let pause = self.timings.build / lines.len().max(1) as u32;
        for line in &lines {
            push_console(&console, line);
            tokio::time::sleep(pause).await;
        }
        if powers_off
            && let Some(sim) = self.lock().servers.get_mut(&id)
            && sim.delete_at.is_none()
        {
            sim.server.status = ServerStatus::Stopped;
        }
    }
}

fn push_console(console: &Mutex<Vec<String>>, line: &str) {
    console.lock().expect("console lock").push(line.to_owned());
}

#[async_trait]
impl Cloud for SimulatedCloud {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn create_server(&self, spec: &ServerSpec) -> CloudResult<String> {
        self.enter(Op::CreateServer)?;
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&spec.user_data);
        if encoded.len() > MAX_USER_DATA_B64 {
            return Err(CloudError::Rejected(format!(
                "user data is {} bytes base64-encoded, over Nova's limit of {MAX_USER_DATA_B64}",
                encoded.len()
            )));
        }
        if spec.name.is_empty() || spec.image.is_empty() || spec.flavor.is_empty() {
            return Err(CloudError::Rejected(
                "name, image and flavor are required".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let volume = uuid::Uuid::new_v4().to_string();
        let scenario = {
            let mut st = self.lock();
            let scenario = st.scenarios.pop_front();
            let address = match &scenario {
                Some(Scenario::ExternalJupyter(at)) => *at.ip(),
                _ => Self::next_address(),
            };
            st.volumes.insert(volume.clone(), Some(id.clone()));
            st.created.push(spec.clone());
            st.servers.insert(
                id.clone(),
                SimServer::new(&id, spec.clone(), address, vec![volume]),
            );
            scenario
        };
        let lose_answer = matches!(scenario, Some(Scenario::LoseCreateResponse));
        let handle = tokio::spawn(self.clone().boot(id.clone(), scenario));
        if let Some(sim) = self.lock().servers.get_mut(&id) {
            sim.vm = Some(handle);
        }
        if lose_answer {
            return Err(CloudError::Unavailable(
                "simulated timeout: the server was created but the answer was lost".into(),
            ));
        }
        self.deliver(Op::CreateServer, id)
    }

    async fn get_server(&self, id: &str) -> CloudResult<Option<Server>> {
        self.enter(Op::GetServer)?;
        self.reap();
        Ok(self.lock().servers.get(id).map(|s| s.server.clone()))
    }

    async fn console_output(&self, id: &str, lines: u32) -> CloudResult<String> {
        self.enter(Op::ConsoleOutput)?;
        let console = self
            .lock()
            .servers
            .get(id)
            .map(|s| s.console.clone())
            .ok_or_else(|| CloudError::Rejected(format!("no server {id}")))?;
        let all = console.lock().expect("console lock");
        let skip = all.len().saturating_sub(lines as usize);
        Ok(all[skip..].join("\n"))
    }

    async fn attach_floating_ip(
        &self,
        server_id: &str,
        owner: &InstallationId,
    ) -> CloudResult<FloatingIp> {
        self.enter(Op::AttachFloatingIp)?;
        let capacity = self.floating_ip_capacity;
        let mut st = self.lock();
        if !st.servers.contains_key(server_id) {
            return Err(CloudError::Rejected(format!("no server {server_id}")));
        }
        let ours = |f: &SimFip| f.owner.as_deref() == Some(owner.as_str());
        if let Some((id, fip)) = st
            .floating_ips
            .iter()
            .find(|(_, f)| ours(f) && f.attached.as_deref() == Some(server_id))
        {
            return Ok(FloatingIp {
                id: id.clone(),
                address: fip.address.clone(),
            });
        }
        // One lock for the look and the attach: two VMs never get one
        // address (the OpenStack backend gets the same from `If-Match`).
        let free = st
            .floating_ips
            .iter()
            .find(|(_, f)| ours(f) && f.attached.is_none())
            .map(|(id, f)| (id.clone(), f.address.clone()));
        let (id, address) = match free {
            Some(found) => found,
            None if st.floating_ips.len() >= capacity => {
                return Err(CloudError::NoFloatingIps(format!(
                    "all {capacity} addresses of the pool are allocated"
                )));
            }
            None => {
                let address = Self::next_address().to_string();
                (uuid::Uuid::new_v4().to_string(), address)
            }
        };
        st.floating_ips.insert(
            id.clone(),
            SimFip {
                address: address.clone(),
                attached: Some(server_id.to_owned()),
                owner: Some(owner.as_str().to_owned()),
            },
        );
        let sim = st.servers.get_mut(server_id).expect("checked above");
        sim.floating_ip = Some(address.clone());
        // The floating IP reaches the same Jupyter as the fixed address.
        if let (Some(jupyter), Ok(ip)) = (sim.jupyter.clone(), address.parse::<Ipv4Addr>()) {
            sim.fip_listener = Some(tokio::spawn(async move { jupyter.serve_on(ip).await }));
        }
        drop(st);
        self.deliver(Op::AttachFloatingIp, FloatingIp { id, address })
    }

    async fn tag_volume(
        &self,
        volume_id: &str,
        owner: &InstallationId,
        _vm_id: &str,
    ) -> CloudResult<()> {
        self.enter(Op::TagVolume)?;
        let mut st = self.lock();
        if !st.volumes.contains_key(volume_id) {
            return Err(CloudError::Rejected(format!("no volume {volume_id}")));
        }
        st.volume_owners
            .insert(volume_id.to_owned(), owner.as_str().to_owned());
        drop(st);
        self.deliver(Op::TagVolume, ())
    }

    async fn delete_server(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteServer)?;
        let delay = self.timings.delete;
        let mut st = self.lock();
        let stuck = st.stuck_deletes;
        if let Some(sim) = st.servers.get_mut(id)
            && sim.delete_at.is_none()
        {
            sim.delete_at = (!stuck).then(|| Instant::now() + delay);
            sim.server.status = ServerStatus::Deleting;
        }
        drop(st);
        self.deliver(Op::DeleteServer, ())
    }

    async fn delete_volume(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteVolume)?;
        self.reap();
        {
            let mut st = self.lock();
            match st.volumes.get(id) {
                Some(Some(_)) => return Err(CloudError::VolumeBusy),
                Some(None) => {
                    st.volumes.remove(id);
                    st.volume_owners.remove(id);
                }
                None => {}
            }
        }
        self.deliver(Op::DeleteVolume, ())
    }

    async fn release_floating_ip(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::ReleaseFloatingIp)?;
        self.lock().floating_ips.remove(id);
        self.deliver(Op::ReleaseFloatingIp, ())
    }

    async fn list_owned(&self, owner: &InstallationId) -> CloudResult<Owned> {
        self.enter(Op::ListOwned)?;
        self.reap();
        let st = self.lock();
        let servers_with = |key: &str| -> Vec<Server> {
            st.servers
                .values()
                .filter(|s| s.server.metadata.contains_key(key) && owner.made(&s.server.metadata))
                .map(|s| s.server.clone())
                .collect()
        };
        Ok(Owned {
            servers: servers_with(META_VM),
            builders: servers_with(META_IMAGE_BUILD),
            volume_ids: st
                .volume_owners
                .iter()
                .filter(|(_, o)| o.as_str() == owner.as_str())
                .map(|(id, _)| id.clone())
                .collect(),
            floating_ips: st
                .floating_ips
                .iter()
                .filter(|(_, f)| f.owner.as_deref() == Some(owner.as_str()))
                .map(|(id, f)| FloatingIp {
                    id: id.clone(),
                    address: f.address.clone(),
                })
                .collect(),
        })
    }

    async fn create_builder(&self, spec: &BuilderSpec) -> CloudResult<String> {
        self.enter(Op::CreateBuilder)?;
        if spec.name.is_empty() || spec.image.is_empty() || spec.flavor.is_empty() {
            return Err(CloudError::Rejected(
                "name, image and flavor are required".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let script = {
            let mut st = self.lock();
            let script = match st.scenarios.front() {
                Some(Scenario::ImageBuildFails(step)) => BuilderScript::Fails(step.clone()),
                Some(Scenario::ImageBuildHangs) => BuilderScript::NeverPowersOff,
                _ => BuilderScript::Succeeds,
            };
            if script != BuilderScript::Succeeds {
                st.scenarios.pop_front();
            }
            // Booted from the image onto the flavor's disk: no volume.
            let as_server = ServerSpec {
                name: spec.name.clone(),
                image: spec.image.clone(),
                flavor: spec.flavor.clone(),
                volume_size_gb: 0,
                delete_volume_on_termination: true,
                key_name: None,
                security_groups: Vec::new(),
                network: None,
                user_data: spec.user_data.clone(),
                metadata: spec.metadata.clone(),
            };
            st.builders.push(spec.clone());
            st.servers.insert(
                id.clone(),
                SimServer::new(&id, as_server, Self::next_address(), Vec::new()),
            );
            script
        };
        let handle = tokio::spawn(self.clone().run_builder(id.clone(), script));
        if let Some(sim) = self.lock().servers.get_mut(&id) {
            sim.vm = Some(handle);
        }
        self.deliver(Op::CreateBuilder, id)
    }

    async fn create_image(&self, server_id: &str, name: &str) -> CloudResult<String> {
        self.enter(Op::CreateImage)?;
        self.reap();
        let ready_at = Instant::now() + self.timings.boot;
        let mut st = self.lock();
        match st.servers.get(server_id).map(|s| &s.server.status) {
            None => return Err(CloudError::Rejected(format!("no server {server_id}"))),
            Some(ServerStatus::Active | ServerStatus::Stopped) => {}
            Some(other) => {
                return Err(CloudError::Rejected(format!(
                    "cannot snapshot server {server_id} while it is {other:?} (409)"
                )));
            }
        }
        let fails = matches!(st.scenarios.front(), Some(Scenario::SnapshotFails));
        if fails {
            st.scenarios.pop_front();
        }
        let id = uuid::Uuid::new_v4().to_string();
        st.images.insert(
            id.clone(),
            SimImage {
                image: Image {
                    id: id.clone(),
                    name: name.to_owned(),
                    status: ImageStatus::Pending("saving".into()),
                },
                ready_at,
                fails,
            },
        );
        drop(st);
        self.deliver(Op::CreateImage, id)
    }

    async fn get_image(&self, id: &str) -> CloudResult<Option<Image>> {
        self.enter(Op::GetImage)?;
        let now = Instant::now();
        Ok(self
            .lock()
            .images
            .get_mut(id)
            .map(|i| i.settle(now).clone()))
    }

    async fn delete_image(&self, id: &str) -> CloudResult<()> {
        self.enter(Op::DeleteImage)?;
        self.lock().images.remove(id);
        self.deliver(Op::DeleteImage, ())
    }

    async fn check(&self) -> Vec<CheckItem> {
        let free = self
            .floating_ip_capacity
            .saturating_sub(self.floating_ip_count());
        vec![
            CheckItem::ok("cloud", "the simulated cloud needs no credentials"),
            CheckItem::ok("floating IPs", format!("{free} free in the simulated pool")),
        ]
    }
}
