//! The dev cloud's VMs, played over the real wire: Nova's fake virt driver
//! boots nothing, so this does what `cloud-init/launch.sh` and its helper
//! would do on each server once it is ACTIVE. It reads the server's user
//! data from Nova with the admin's credentials (`OS-EXT-SRV-ATTR:user_data`,
//! base64 of the cloud-config carrying the boot data), prebuilds the pinned
//! repositories (a pool VM), long-polls `GET /api/vm/assignment` with the
//! boot secret, and once it has its job reports cloning, building and
//! starting with the secret of the assignment, starts a real
//! jupyter-server on the server's fixed address and the boot data's port
//! under `/user/<login>/` with the job's token, and reports `ready` once
//! its `/api` answers, as launch.sh does.
//!
//! Nothing is cloned or built here: the VM's own time is the Jupyter
//! start alone (measured per VM), and a pool VM's prebuild takes none.

use crate::dev::Rest;
use crate::real_jupyter::RealJupyter;
use base64::Engine;
use serde_json::Value;
use stackbinder::cloud_init::{Assignment, BootData, CallbackReport, LaunchData, parse_boot_data};
use stackbinder::domain::Progress;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often Nova is asked for servers that became ACTIVE: the delay
/// between a boot and its agent starting, here.
const WATCH: Duration = Duration::from_millis(500);
/// As launch.sh: retries of a request stackbinder failed (5xx, 429, no
/// answer), 3 s apart.
const RETRIES: u32 = 40;
const RETRY_DELAY: Duration = Duration::from_secs(3);
/// Longer than any hold (`provision.assignment_hold_seconds` <= 300).
const ASK_TIMEOUT: Duration = Duration::from_secs(330);

/// What one played VM went through, by the clock of this process.
#[derive(Debug, Clone, Default)]
pub struct Played {
    /// When Nova was seen to have the server ACTIVE.
    pub active: Option<Instant>,
    /// When the answer with its job arrived.
    pub assigned: Option<Instant>,
    /// From starting Jupyter until its `/api` answered.
    pub jupyter_start: Option<Duration>,
    /// When the `ready` report was sent.
    pub ready_sent: Option<Instant>,
}

type Records = Arc<Mutex<HashMap<String, Played>>>;

/// The watcher and every VM it plays.
pub struct PlayedVms {
    records: Records,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    watcher: JoinHandle<()>,
}

impl PlayedVms {
    /// Play every server of the admin's project that becomes ACTIVE and
    /// carries boot data, running its Jupyter with `python`.
    pub fn start(admin: Rest, python: PathBuf) -> Self {
        let records = Records::default();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let watcher = tokio::spawn(watch(admin, python, records.clone(), tasks.clone()));
        Self {
            records,
            tasks,
            watcher,
        }
    }

    /// The VM of `vm_id` (stackbinder's id, in its boot data).
    pub fn of(&self, vm_id: &str) -> Played {
        self.records
            .lock()
            .unwrap()
            .get(vm_id)
            .cloned()
            .unwrap_or_else(|| panic!("no played VM {vm_id}"))
    }
}

/// Dropped (stopped, or a failed run unwinding): no VM is played any more,
/// and their Jupyter servers stop with their tasks.
impl Drop for PlayedVms {
    fn drop(&mut self) {
        self.watcher.abort();
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn watch(
    admin: Rest,
    python: PathBuf,
    records: Records,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut seen = HashSet::new();
    loop {
        let servers = admin.get("compute", "/servers/detail").await;
        for server in servers["servers"].as_array().into_iter().flatten() {
            let id = server["id"].as_str().unwrap_or_default().to_owned();
            if server["status"] != "ACTIVE" || !seen.insert(id.clone()) {
                continue;
            }
            let (Some(boot), Some(address)) = (boot_data(server), fixed_address(server)) else {
                eprintln!("server {id}: no boot data or no fixed address; not played");
                continue;
            };
            records.lock().unwrap().insert(
                boot.vm_id.to_string(),
                Played {
                    active: Some(Instant::now()),
                    ..Played::default()
                },
            );
            let vm = PlayedVm {
                http: reqwest::Client::new(),
                boot,
                records: records.clone(),
            };
            let task = tokio::spawn(vm.play(address, python.clone()));
            tasks.lock().unwrap().push(task);
        }
        tokio::time::sleep(WATCH).await;
    }
}

/// The boot data in the server's user data, as cloud-init hands it over.
fn boot_data(server: &Value) -> Option<BootData> {
    let encoded = server["OS-EXT-SRV-ATTR:user_data"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    parse_boot_data(&String::from_utf8(decoded).ok()?)
}

/// The server's address on its network, which its NIC would have.
fn fixed_address(server: &Value) -> Option<Ipv4Addr> {
    server["addresses"]
        .as_object()?
        .values()
        .flat_map(|a| a.as_array().into_iter().flatten())
        .find(|a| a["OS-EXT-IPS:type"] == "fixed" && a["version"] == 4)?["addr"]
        .as_str()?
        .parse()
        .ok()
}

struct PlayedVm {
    http: reqwest::Client,
    boot: BootData,
    records: Records,
}

impl PlayedVm {
    fn note(&self, change: impl FnOnce(&mut Played)) {
        let mut records = self.records.lock().unwrap();
        change(records.entry(self.boot.vm_id.to_string()).or_default());
    }

    fn say(&self, line: &str) {
        eprintln!("played VM {}: {line}", self.boot.vm_id);
    }

    async fn play(self, address: Ipv4Addr, python: PathBuf) {
        // A pool VM's `repo2docker --no-run` of each pinned repository:
        // nothing to build on a server that boots nothing. The images it
        // would leave are what a claim of one of them finds.
        let prebuilt = self.boot.prebuild.clone();
        let Some(job) = self.ask_for_job().await else {
            return;
        };
        self.note(|p| p.assigned = Some(Instant::now()));
        let data = LaunchData::new(&self.boot, &job);
        let is_prebuilt = prebuilt
            .iter()
            .any(|p| p.repo == job.repo && p.git_ref == job.git_ref);
        let building = if is_prebuilt {
            "stackbinder: environment prebuilt: starting without a build"
        } else {
            "Picked Git content provider."
        };
        let cloning = format!("Cloning {} at {}", data.repo, data.git_ref);
        for (seq, phase, line) in [
            (1, Progress::Cloning, cloning.as_str()),
            (2, Progress::Building, building),
        ] {
            if !self.report(&data, seq, phase, None, line).await {
                return;
            }
        }
        let at = SocketAddrV4::new(address, data.jupyter_port);
        if !self
            .report(
                &data,
                3,
                Progress::Starting,
                None,
                &format!("Starting Jupyter on {at}"),
            )
            .await
        {
            return;
        }
        let started = Instant::now();
        let jupyter = RealJupyter::start_on(&python, &data.login, &data.jupyter_token, at).await;
        let api = format!("http://{}/user/{}/api", jupyter.addr, data.login);
        // As launch.sh: ready once Jupyter's /api answers.
        while !matches!(self.http.get(&api).send().await, Ok(r) if r.status().is_success()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.note(|p| p.jupyter_start = Some(started.elapsed()));
        let port = jupyter.addr.port();
        let answers = format!("stackbinder: Jupyter answers on port {port}");
        self.note(|p| p.ready_sent = Some(Instant::now()));
        if self
            .report(&data, 4, Progress::Ready, Some(port), &answers)
            .await
        {
            // Jupyter serves until the bench stops this VM.
            std::future::pending::<()>().await;
        }
    }

    /// launch.sh's `ask_for_job`: 204 asks again at once, 409 stops,
    /// 5xx/429/no answer waits and asks again, anything else gives up.
    async fn ask_for_job(&self) -> Option<Assignment> {
        let mut failures = 0;
        while failures < RETRIES {
            let sent = self
                .http
                .get(self.boot.assignment_url.clone())
                .query(&[("vm", self.boot.vm_id.to_string())])
                .bearer_auth(&self.boot.callback_secret)
                .timeout(ASK_TIMEOUT)
                .send()
                .await;
            let status = sent.as_ref().ok().map(|r| r.status().as_u16());
            match status {
                Some(200) => return sent.ok()?.json().await.ok(),
                Some(204) => continue,
                Some(409) => return None,
                Some(429 | 500..) | None => {}
                Some(other) => {
                    self.say(&format!("refused its job (HTTP {other}); giving up"));
                    return None;
                }
            }
            failures += 1;
            tokio::time::sleep(RETRY_DELAY).await;
        }
        self.say("never got its job");
        None
    }

    /// launch.sh's `report`: one report with the secret that acts for the
    /// VM; false when it should stop (409, or refused).
    async fn report(
        &self,
        data: &LaunchData,
        seq: i64,
        phase: Progress,
        port: Option<u16>,
        line: &str,
    ) -> bool {
        let body = CallbackReport {
            vm: data.vm_id,
            seq,
            phase: Some(phase),
            port,
            log: vec![line.to_owned()],
            home_used_bytes: None,
            home_total_bytes: None,
        };
        for _ in 0..RETRIES {
            let sent = self
                .http
                .post(data.callback_url.clone())
                .bearer_auth(&data.callback_secret)
                .json(&body)
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            match sent.map(|r| r.status().as_u16()) {
                Ok(200..=299) => return true,
                Ok(429 | 500..) | Err(_) => tokio::time::sleep(RETRY_DELAY).await,
                Ok(other) => {
                    self.say(&format!("report {seq} refused (HTTP {other}); stopping"));
                    return false;
                }
            }
        }
        self.say(&format!("report {seq} never taken; stopping"));
        false
    }
}
