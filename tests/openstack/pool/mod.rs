//! The warm pool through the whole application on the fake OpenStack: the
//! driver boots pool VMs, launches claim the ready ones (and boot cold
//! when none is), claimed servers are renamed, marked and given their
//! owner's storage and floating IP, and nothing of the pool leaks.
//!
//! A fake Nova boots nothing: the tests play the pool VMs, which ask for
//! their job with the boot secret from their user data.

use crate::app::web_app::WebApp;
use crate::fake_openstack::{Call, FakeOpenStack, Limits};
use crate::helpers::*;
use axum::http::Method;
use reqwest::StatusCode;
use serde_json::Value;
use stackbinder::cloud::{Cloud, META_POOL, META_VM};
use stackbinder::cloud_init::{BootData, parse_boot_data};
use stackbinder::config::{Config, JupyterAccess};
use stackbinder::domain::{GithubId, Login, VmId};
use stackbinder::store::{PoolState, PoolVm, Store, VmRecord};
use std::collections::HashMap;
use std::num::NonZero;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

mod claim;
mod claimed;
mod first_launch;
mod life;
mod ready;
mod room;

pub(super) struct App {
    pub web: WebApp,
    pub fake: FakeOpenStack,
    /// The held requests of the pool VMs `fill` plays.
    polls: Mutex<HashMap<VmId, (BootData, HeldRequest)>>,
}

/// A VM's request for its job, answered (status, body) when it ends.
type HeldRequest = JoinHandle<(StatusCode, Value)>;

/// What a VM does once booted: ask for its job, as long as it is held.
async fn ask_for_job(boot: BootData) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(boot.assignment_url.as_str())
        .query(&[("vm", boot.vm_id.to_string())])
        .bearer_auth(&boot.callback_secret)
        .send()
        .await
        .expect("the request is answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(super) const LIMIT: Duration = Duration::from_secs(30);

impl App {
    pub fn store(&self) -> &Store {
        self.web.provisioner().store()
    }

    pub async fn pool(&self) -> Vec<PoolVm> {
        self.store().pool_vms().await.unwrap()
    }

    /// Wait until the pool satisfies `done`; its rows then.
    pub async fn wait_for_pool(&self, what: &str, done: impl Fn(&[PoolVm]) -> bool) -> Vec<PoolVm> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pool = self.pool().await;
            if done(&pool) {
                return pool;
            }
            assert!(Instant::now() < deadline, "waited for {what}: {pool:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `n` pool VMs have a running server, and play each VM:
    /// it asks for its job with its boot secret (`GET /api/vm/assignment`),
    /// which makes it ready to be claimed, and keeps the request held.
    pub async fn fill(&self, n: usize) -> Vec<PoolVm> {
        let booted = self
            .wait_for_pool(&format!("{n} booted pool VMs"), |pool| {
                pool.iter()
                    .filter(|vm| vm.state == PoolState::Booting && vm.address.is_some())
                    .count()
                    >= n
            })
            .await;
        for vm in booted.iter().filter(|vm| vm.address.is_some()) {
            self.play(vm);
        }
        self.wait_for_pool("ready pool VMs", |pool| {
            pool.iter()
                .filter(|vm| vm.state == PoolState::Ready)
                .count()
                >= n
        })
        .await
    }

    /// Play a booted pool VM: it asks for its job, and is held.
    pub fn play(&self, vm: &PoolVm) {
        let boot = self.boot_data_of(vm.id);
        let poll = tokio::spawn(ask_for_job(boot.clone()));
        self.polls.lock().unwrap().insert(vm.id, (boot, poll));
    }

    /// The boot data Nova received for the server of pool VM `id`.
    pub fn boot_data_of(&self, id: VmId) -> BootData {
        let creates = self.creates();
        let index = creates
            .iter()
            .position(|s| s["metadata"][META_VM] == id.to_string())
            .expect("the pool VM's server was created");
        parse_boot_data(&self.fake.user_data(index)).expect("boot data in the user data")
    }

    /// Whether the held request of pool VM `id` (see `fill`) has ended.
    pub fn answered(&self, id: VmId) -> bool {
        self.polls.lock().unwrap()[&id].1.is_finished()
    }

    /// The answer to the held request of pool VM `id` (see `fill`).
    pub async fn answer_of(&self, id: VmId) -> (BootData, StatusCode, Value) {
        let (boot, poll) = self
            .polls
            .lock()
            .unwrap()
            .remove(&id)
            .expect("a held request");
        let (status, body) = poll.await.unwrap();
        (boot, status, body)
    }

    /// The bodies of `POST /servers` Nova received, in order.
    pub fn creates(&self) -> Vec<Value> {
        self.fake
            .find_calls(Method::POST, "servers")
            .into_iter()
            .filter(|c: &Call| c.path == "servers")
            .map(|c| c.body.expect("a body")["server"].clone())
            .collect()
    }

    /// Renames Nova received: (server id, new name).
    pub fn renames(&self) -> Vec<(String, String)> {
        self.fake
            .find_calls(Method::PUT, "servers/")
            .into_iter()
            .filter(|c| c.path.matches('/').count() == 1)
            .map(|c| {
                let id = c.path.trim_start_matches("servers/").to_owned();
                let name = c.body.expect("a body")["server"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (id, name)
            })
            .collect()
    }
}

/// Two launch profiles: the default, "standard" (m1.large, 100 GB), which
/// the pool's VMs are made of, and "big" (m1.medium, 60 GB).
pub(super) fn standard_and_big() -> stackbinder::config::Profiles {
    serde_json::from_value(serde_json::json!([
        {"name": "standard", "description": "4 cores", "flavor": "m1.large",
         "volume_size_gb": 100},
        {"name": "big", "description": "a big disk", "flavor": "m1.medium",
         "volume_size_gb": 60},
    ]))
    .unwrap()
}

pub(super) fn is_pool_create(server: &Value) -> bool {
    server["metadata"].get(META_POOL).is_some()
}

pub(super) async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.server_address = "127.0.0.1".into();
        w.boot_polls = 1;
        w.limits = Limits {
            instances: 500,
            cores: 5000,
            ram: 100_000_000,
            volumes: 500,
            gigabytes: 1_000_000,
            floatingips: 20,
        };
    }
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud = env.config.clone();
    config.cloud.name_prefix = "binder-".into();
    config.cloud.jupyter_access = JupyterAccess::Proxy;
    config.pool.size = 2;
    // Held requests are answered within the tests' waits.
    config.provision.assignment_hold_seconds = NonZero::new(20).unwrap();
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = WebApp::start(config, cloud, "alice", Duration::from_secs(30)).await;
    let app = App {
        web,
        fake: env.fake.clone(),
        polls: Mutex::default(),
    };
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    app
}

impl App {
    /// Wait until `done` holds of what Nova received.
    pub async fn wait_for_calls(&self, what: &str, done: impl Fn(&FakeOpenStack) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done(&self.fake) {
            assert!(Instant::now() < deadline, "waited for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(super) async fn alices_vm(app: &App) -> VmRecord {
    let alice = GithubId::for_demo(&Login::parse("alice").unwrap());
    app.store()
        .live_vm_of(alice)
        .await
        .unwrap()
        .expect("alice's VM")
}

pub(super) async fn wait_for_vm(
    app: &App,
    what: &str,
    done: impl Fn(&VmRecord) -> bool,
) -> VmRecord {
    let deadline = Instant::now() + LIMIT;
    loop {
        let vm = alices_vm(app).await;
        if done(&vm) {
            return vm;
        }
        assert!(Instant::now() < deadline, "waited for {what}: {vm:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
