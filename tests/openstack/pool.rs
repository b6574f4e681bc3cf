//! The warm pool through the whole application on the fake OpenStack: the
//! driver boots pool VMs, launches claim the ready ones (and boot cold
//! when none is), claimed servers are renamed, marked and given their
//! owner's storage and floating IP, and nothing of the pool leaks.
//!
//! A pool VM becomes ready when it first asks for its assignment; these
//! tests stand in for that request through the store.

use crate::app::web_app::{REPO, WebApp};
use crate::fake_openstack::{Call, FakeOpenStack, Limits};
use crate::helpers::*;
use axum::http::Method;
use futures_util::future::join_all;
use serde_json::Value;
use stackbinder::cloud::{Cloud, META_OWNER, META_POOL, META_VM};
use stackbinder::config::{Config, JupyterAccess};
use stackbinder::domain::LaunchPath;
use stackbinder::store::{PoolState, PoolVm, Store};
use std::collections::HashSet;
use std::num::NonZero;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct App {
    web: WebApp,
    fake: FakeOpenStack,
}

const LIMIT: Duration = Duration::from_secs(30);

impl App {
    fn store(&self) -> &Store {
        self.web.provisioner().store()
    }

    async fn pool(&self) -> Vec<PoolVm> {
        self.store().pool_vms().await.unwrap()
    }

    /// Wait until the pool satisfies `done`; its rows then.
    async fn wait_for_pool(&self, what: &str, done: impl Fn(&[PoolVm]) -> bool) -> Vec<PoolVm> {
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

    /// Wait until `n` pool VMs have a running server, and play their first
    /// poll for an assignment: they are ready to be claimed.
    async fn fill(&self, n: usize) -> Vec<PoolVm> {
        let booted = self
            .wait_for_pool(&format!("{n} booted pool VMs"), |pool| {
                pool.iter()
                    .filter(|vm| vm.state == PoolState::Booting && vm.address.is_some())
                    .count()
                    >= n
            })
            .await;
        for vm in booted.iter().filter(|vm| vm.address.is_some()) {
            self.store().pool_vm_polled(vm.id).await.unwrap();
        }
        self.wait_for_pool("ready pool VMs", |pool| {
            pool.iter()
                .filter(|vm| vm.state == PoolState::Ready)
                .count()
                >= n
        })
        .await
    }

    /// The bodies of `POST /servers` Nova received, in order.
    fn creates(&self) -> Vec<Value> {
        self.fake
            .find_calls(Method::POST, "servers")
            .into_iter()
            .filter(|c: &Call| c.path == "servers")
            .map(|c| c.body.expect("a body")["server"].clone())
            .collect()
    }

    /// Renames Nova received: (server id, new name).
    fn renames(&self) -> Vec<(String, String)> {
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

fn is_pool_create(server: &Value) -> bool {
    server["metadata"].get(META_POOL).is_some()
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
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
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = WebApp::start(config, cloud, "alice", Duration::from_secs(30)).await;
    let app = App {
        web,
        fake: env.fake.clone(),
    };
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    app
}

#[tokio::test]
async fn fifty_concurrent_launches_claim_the_ten_ready_pool_vms_once_each() {
    // Arrange: ten ready pool VMs, fifty users.
    let app = spawn(|c| c.pool.size = 10).await;
    let ready = app.fill(10).await;
    let pool_servers: HashSet<String> =
        ready.iter().filter_map(|vm| vm.server_id.clone()).collect();
    assert_eq!(pool_servers.len(), 10);
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(app.web.another_user(&format!("student{i}")).await);
    }

    // Act: all launch at once.
    let answers = join_all(users.iter().map(|u| u.launch(REPO, "HEAD", ""))).await;

    // Assert: ten claimed, forty cold, no pool VM twice.
    for answer in &answers {
        assert!(answer.status().is_redirection(), "{}", answer.status());
    }
    let mut claimed = Vec::new();
    let mut cold = 0;
    for i in 0..50 {
        let owner = stackbinder::domain::GithubId::for_demo(
            &stackbinder::domain::Login::parse(&format!("student{i}")).unwrap(),
        );
        let vm = app.store().live_vm_of(owner).await.unwrap().expect("a VM");
        match vm.launch_path {
            LaunchPath::Pool => claimed.push(vm),
            LaunchPath::Cold => cold += 1,
        }
    }
    assert_eq!((claimed.len(), cold), (10, 40));
    let claimed_servers: HashSet<String> = claimed
        .iter()
        .map(|vm| vm.server_id.clone().expect("the pool VM's server"))
        .collect();
    assert_eq!(claimed_servers, pool_servers, "each pool VM claimed once");
    let claimed_ids: HashSet<_> = claimed.iter().map(|vm| vm.id).collect();
    assert!(ready.iter().all(|vm| claimed_ids.contains(&vm.id)));
    // What Nova received: the ten pool servers renamed to their owners'
    // names, forty servers booted for users, and pool VMs to refill.
    let deadline = Instant::now() + LIMIT;
    while app.renames().len() < 10
        || app.creates().iter().filter(|s| !is_pool_create(s)).count() < 40
    {
        assert!(Instant::now() < deadline, "renames {:?}", app.renames());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renames = app.renames();
    let renamed: HashSet<&String> = renames.iter().map(|(id, _)| id).collect();
    assert_eq!(renamed.len(), 10);
    assert!(renamed.iter().all(|id| pool_servers.contains(*id)));
    for vm in &claimed {
        let server = vm.server_id.as_deref().unwrap();
        assert!(
            renames.contains(&(server.to_owned(), vm.name.clone())),
            "{renames:?}"
        );
        let marks = &app.fake.world().servers[server].metadata;
        assert_eq!(marks[META_OWNER], vm.owner_id.to_string());
        assert_eq!(marks[META_VM], vm.id.to_string());
        assert!(!marks.contains_key(META_POOL), "{marks:?}");
    }
    let creates = app.creates();
    let user_creates = creates.iter().filter(|s| !is_pool_create(s)).count();
    assert_eq!(user_creates, 40);
    app.wait_for_pool("the pool refilled", |pool| pool.len() == 10)
        .await;
    assert!(creates.iter().filter(|s| is_pool_create(s)).count() >= 10);
}
