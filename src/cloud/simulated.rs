//! A cloud in this process that behaves like Nova, Cinder and Neutron as
//! stackbinder sees them: servers go BUILD → ACTIVE after a delay (or ERROR
//! with a fault, on demand), boot volumes come and go with their server,
//! home volumes stay once made and are attached to the servers that ask,
//! floating IPs come from a finite pool, and the console output grows.
//! Once ACTIVE, a simulated VM asks stackbinder for its job and runs the
//! launch the way the real launch script does: it reports progress to stackbinder over HTTP and serves a
//! small Jupyter stand-in on its own loopback address. An image builder
//! prints the build's progress and verdict on its console and powers off;
//! its snapshot is saving for a moment, then active.

mod agent;
mod api;
mod boot;
mod builder_console;
mod drills;
mod jupyter_stand_in;
mod launch_script;
mod real_jupyter;
mod state;

use super::{CloudError, CloudResult};
use crate::config::SimulatorConfig;
use state::State;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Nova's limit on user data, base64-encoded.
const MAX_USER_DATA_B64: usize = 65_535;

/// Timings of the simulated cloud and VMs, as played (already scaled).
#[derive(Debug, Clone)]
pub struct Timings {
    /// Server BUILD -> ACTIVE (a boot from a new volume).
    pub boot: Duration,
    pub clone: Duration,
    /// A repo2docker build of an environment that is not in Docker's cache.
    pub build: Duration,
    /// Jupyter starting in a freshly built image.
    pub start: Duration,
    /// Jupyter starting from an image that is already there (a prebuilt
    /// environment: repo2docker finds it and skips the build).
    pub cached_start: Duration,
    pub delete: Duration,
}

impl Timings {
    /// `[simulator]`'s real-cloud timings times its `time_scale`.
    pub fn from_config(c: &SimulatorConfig) -> Self {
        Self {
            boot: c.boot(),
            clone: c.clone_repo(),
            build: c.build(),
            start: c.start(),
            cached_start: c.cached_start(),
            delete: c.delete(),
        }
    }

    /// From the click to a ready Jupyter on a VM booted for the launch,
    /// as the simulated cloud plays it (stackbinder's own steps aside).
    pub fn cold_launch(&self) -> Duration {
        self.boot + self.clone + self.build + self.start
    }

    /// The same on a booted VM whose environment is prebuilt.
    pub fn prebuilt_launch(&self) -> Duration {
        self.clone + self.cached_start
    }

    /// Fast enough for tests, slow enough to observe each state.
    pub fn quick() -> Self {
        let ms = Duration::from_millis;
        Self {
            boot: ms(150),
            clone: ms(100),
            build: ms(150),
            start: ms(100),
            cached_start: ms(50),
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
    UpdateServer,
    AttachVolume,
    DeleteVolume,
    ReleaseFloatingIp,
    TagVolume,
    CreateVolume,
    GetVolume,
    FindHomeVolume,
    ListOwned,
    CreateBuilder,
    CreateImage,
    GetImage,
    DeleteImage,
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
        let counter = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % ADDRESSES));
        loopback_address(counter.fetch_add(1, Ordering::Relaxed))
    }
}

/// How many loopback addresses the simulated cloud hands out before it
/// starts again: 127.1.0.1 to 127.253.255.254, 254 hosts per /24.
const ADDRESSES: u32 = 253 * 256 * 254;

/// The `n`th address, skipping the .0 and .255 host bytes: each `n` gives
/// an address of its own (clamping the host byte, as this once did, gave
/// .254 to both the 254th and 255th of a /24).
fn loopback_address(n: u32) -> Ipv4Addr {
    let n = n % ADDRESSES;
    let (block, host) = (n / 254, n % 254);
    let [_, _, b, c] = (0x0100 + block).to_be_bytes();
    Ipv4Addr::new(127, b, c, 1 + host as u8)
}

fn push_console(console: &Mutex<Vec<String>>, line: &str) {
    console.lock().expect("console lock").push(line.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_a_prebuilt_launch_is_far_quicker_than_a_boot_and_a_build() {
        let t = Timings::from_config(&SimulatorConfig::default());
        let (cold, prebuilt) = (t.cold_launch(), t.prebuilt_launch());
        assert!(cold >= prebuilt * 8, "{cold:?} vs {prebuilt:?}");
        assert!(
            cold < Duration::from_secs(15),
            "the demo stays quick: {cold:?}"
        );
    }

    #[test]
    fn two_simulated_servers_in_a_row_never_share_an_address() {
        // Around the end of a /24, where the host byte would be 255 or 0.
        let addresses: Vec<Ipv4Addr> = (250..270).map(loopback_address).collect();
        let distinct: std::collections::BTreeSet<_> = addresses.iter().collect();
        assert_eq!(distinct.len(), addresses.len(), "{addresses:?}");
        assert!(
            addresses.iter().all(|a| !matches!(a.octets()[3], 0 | 255)),
            "{addresses:?}"
        );
    }

    #[test]
    fn simulated_addresses_stay_in_127_1_to_127_253() {
        assert_eq!(loopback_address(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(
            loopback_address(ADDRESSES - 1),
            Ipv4Addr::new(127, 253, 255, 254)
        );
        assert_eq!(loopback_address(ADDRESSES), loopback_address(0));
    }
}
