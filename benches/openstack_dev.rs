//! Launches and deletes on the real control plane of
//! `scripts/openstack-dev.sh`: wall time and API requests by service.
//!
//!     scripts/openstack-dev.sh up && eval "$(scripts/openstack-dev.sh env)"
//!     cargo bench --bench openstack_dev            # BENCH_USERS=50 by default
//!
//! stackbinder runs in-process (its driver in the background, default
//! `provision` settings but a 500 ms poll), on the dev cloud's non-admin
//! entry. A launch is timed from `Provisioner::launch` to the VM's
//! `building` state (server ACTIVE, boot volume attached, floating IP on
//! its port: all a fake virt driver gets to); a delete from
//! `Provisioner::delete` to `deleted` (server, volume and floating IP gone,
//! checked with the admin's own calls afterwards). Requests are counted from
//! the services' uwsgi request logs (logs/<service>.requests), keeping only
//! stackbinder's: they carry no User-Agent, while the services calling each
//! other (keystoneauth) and this benchmark's own checks carry one.

#[path = "../tests/conformance/dev.rs"]
#[allow(dead_code)]
mod dev;

use stackbinder::app::{Application, Options};
use stackbinder::cloud::Cloud;
use stackbinder::domain::{GithubId, LaunchParams, VmId, VmState};
use stackbinder::provision::{DeleteReason, Provisioner};
use stackbinder::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(900);

/// Byte offsets of every request log, to count what came after.
struct Logs {
    dir: PathBuf,
    offsets: BTreeMap<String, u64>,
}

impl Logs {
    fn mark() -> Self {
        let dir = dev::clouds_yaml().parent().unwrap().join("logs");
        let mut offsets = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "requests") {
                let service = path.file_stem().unwrap().to_string_lossy().into_owned();
                offsets.insert(service, std::fs::metadata(&path).unwrap().len());
            }
        }
        Self { dir, offsets }
    }

    /// stackbinder's requests since the mark, by service.
    fn count(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (service, from) in &self.offsets {
            let text = std::fs::read(self.dir.join(format!("{service}.requests"))).unwrap();
            let new = String::from_utf8_lossy(&text[*from as usize..]).into_owned();
            let n = new.lines().filter(|l| l.ends_with("\"-\"")).count();
            if n > 0 {
                counts.insert(service.clone(), n);
            }
        }
        counts
    }
}

fn total(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().sum()
}

fn by_service(counts: &BTreeMap<String, usize>, per: usize) -> String {
    counts
        .iter()
        .map(|(s, n)| {
            if per == 1 {
                format!("{s} {n}")
            } else {
                format!("{s} {:.1}", *n as f64 / per as f64)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn wait_state(store: &Store, id: VmId, state: VmState) -> Duration {
    let start = Instant::now();
    loop {
        let vm = store.vm(id).await.unwrap().unwrap();
        if vm.state == state {
            return start.elapsed();
        }
        assert!(
            vm.state != VmState::Failed,
            "VM {id} failed: {:?}",
            vm.last_error
        );
        assert!(start.elapsed() < LIMIT, "VM {id} stuck in {}", vm.state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Bench {
    provisioner: Provisioner,
    store: Store,
    admin: dev::Rest,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = dev::config(dir.path());
        config.registration.secret = None;
        let cloud: Arc<dyn Cloud> = Arc::new(dev::backend(&config.cloud));
        let app = Application::build(
            config,
            Options {
                demo_login: true,
                cloud: Some(cloud),
                drive_in_background: true,
                public_url_from_bind: true,
            },
        )
        .await
        .unwrap();
        let provisioner = app.provisioner();
        let store = provisioner.store().clone();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        let admin = dev::Rest::connect(dev::ADMIN_CLOUD).await;
        admin.purge().await;
        Self {
            provisioner,
            store,
            admin,
            _dir: dir,
        }
    }

    async fn user(&self, n: i64) -> stackbinder::store::User {
        let login = stackbinder::domain::Login::parse(&format!("bench{n}")).unwrap();
        self.store.record_login(GithubId(n), &login).await.unwrap();
        self.store.register(GithubId(n), "bench").await.unwrap();
        self.store.user_by_login(&login).await.unwrap().unwrap()
    }

    async fn launch(&self, n: i64) -> (VmId, Duration) {
        let user = self.user(n).await;
        let request = LaunchParams::default()
            .validate(&self.provisioner.settings().launch.default_repo)
            .unwrap();
        let start = Instant::now();
        let vm = self.provisioner.launch(&user, &request).await.unwrap();
        wait_state(&self.store, vm.id, VmState::Building).await;
        (vm.id, start.elapsed())
    }

    async fn delete(&self, id: VmId) -> Duration {
        let vm = self.store.vm(id).await.unwrap().unwrap();
        let start = Instant::now();
        self.provisioner
            .delete(&vm, DeleteReason::CommandLine, "benchmark")
            .await
            .unwrap();
        wait_state(&self.store, id, VmState::Deleted).await;
        start.elapsed()
    }

    async fn assert_empty(&self) {
        let (servers, volumes, fips) = self.admin.inventory().await;
        assert!(
            servers.is_empty() && volumes.is_empty() && fips.is_empty(),
            "left behind: {servers:?} {volumes:?} {fips:?}"
        );
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {} / median {} / p90 {} / max {}",
        secs(v[0]),
        secs(at(0.5)),
        secs(at(0.9)),
        secs(v[v.len() - 1])
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os(dev::CLOUDS_VAR).is_none() {
        eprintln!(
            "needs the dev cloud: scripts/openstack-dev.sh up && eval \"$(scripts/openstack-dev.sh env)\""
        );
        std::process::exit(1);
    }
    let users: i64 = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let bench = Bench::start().await;
    println!("| operation | wall | requests | by service |");
    println!("|---|---|---|---|");

    // One user at a time; the first launch also authenticates and looks
    // the configured names up.
    for round in 0..ROUNDS {
        let logs = Logs::mark();
        let (id, wall) = bench.launch(round as i64 + 1).await;
        let calls = logs.count();
        let what = if round == 0 { "first launch" } else { "launch" };
        println!(
            "| {what} | {} | {} | {} |",
            secs(wall),
            total(&calls),
            by_service(&calls, 1)
        );
        let logs = Logs::mark();
        let wall = bench.delete(id).await;
        let calls = logs.count();
        bench.assert_empty().await;
        println!(
            "| delete | {} | {} | {} |",
            secs(wall),
            total(&calls),
            by_service(&calls, 1)
        );
    }

    // Many users at once.
    let logs = Logs::mark();
    let start = Instant::now();
    let launches = futures_util::future::join_all((0..users).map(|n| bench.launch(1000 + n))).await;
    let all = start.elapsed();
    let calls = logs.count();
    println!(
        "| {users} launches at once: all building after | {} ({}) | {} ({:.1} per VM) | {} per VM |",
        secs(all),
        spread(launches.iter().map(|l| l.1).collect()),
        total(&calls),
        total(&calls) as f64 / users as f64,
        by_service(&calls, users as usize)
    );
    let logs = Logs::mark();
    let start = Instant::now();
    let deletes =
        futures_util::future::join_all(launches.iter().map(|(id, _)| bench.delete(*id))).await;
    let all = start.elapsed();
    let calls = logs.count();
    bench.assert_empty().await;
    println!(
        "| {users} deletes at once: all gone after | {} ({}) | {} ({:.1} per VM) | {} per VM |",
        secs(all),
        spread(deletes),
        total(&calls),
        total(&calls) as f64 / users as f64,
        by_service(&calls, users as usize)
    );
}
