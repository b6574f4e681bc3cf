//! The class start on each store and with several replicas (issue #14):
//! `cargo bench --bench class_start -- replicas [sizes]`.
//!
//! The same class (everybody presses Launch within `LAUNCH_WINDOW`, watches
//! the VM's event stream and asks for it now and then, then deletes it)
//! against `stackbinder serve` on the simulated cloud, three ways: on
//! SQLite, on PostgreSQL, and as two replicas on one PostgreSQL database
//! with the students spread over them (as a load balancer would). `serve`
//! logs in with GitHub only, so these students are scripts of the REST API:
//! each has a token written into the database beforehand, launches with
//! `POST /api/v1/vm`, watches `/api/v1/vm/events` and `/api/v1/vm`, and
//! deletes with `DELETE /api/v1/vm`. The PostgreSQL is a throw-away cluster
//! (`tests/support/postgres.rs`, or `TEST_POSTGRES_URL`).
//!
//! The simulated VMs live in the process that creates them, the lease
//! holder; their reports go to the first replica (`server.public_url`).

use super::{
    ClassResult, Student, launch_and_watch, postgres, proc_status_kib, report, sqlite_counts,
    summary_cells,
};
use stackbinder::domain::{GithubId, Login};
use stackbinder::store::{NewToken, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a replica may take to answer `/healthz` after it starts.
const START_WITHIN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Setup {
    Sqlite,
    Postgres { replicas: usize },
}

impl Setup {
    fn label(self) -> String {
        match self {
            Self::Sqlite => "SQLite | 1".into(),
            Self::Postgres { replicas } => format!("PostgreSQL | {replicas}"),
        }
    }
}

pub async fn run(sizes: &[usize]) {
    let setups = [
        Setup::Sqlite,
        Setup::Postgres { replicas: 1 },
        Setup::Postgres { replicas: 2 },
    ];
    let mut results = Vec::new();
    for &n in sizes {
        for setup in setups {
            results.push((setup, run_class(n, setup).await));
        }
    }
    println!("== summary (REST API students, `serve` on the simulated cloud)");
    println!(
        "| store | replicas | students | launch p50 | launch p99 | launch max | answered | ready | lost | ready p50 | ready p99 | /api/v1/vm p99 | SSE p99 | deletes | peak RSS (all replicas) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (setup, r) in &results {
        let cells = summary_cells(r).join(" | ");
        println!("| {} | {} | {cells} |", setup.label(), r.students);
    }
}

async fn run_class(n: usize, setup: Setup) -> ClassResult {
    println!(
        "== {n} students, {}",
        setup.label().replace(" | ", ", replicas: ")
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (database_url, replicas) = match setup {
        Setup::Sqlite => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            1,
        ),
        Setup::Postgres { replicas } => (postgres::database_url_for(dir.path()), replicas),
    };
    let tokens = tokens_for(&database_url, n).await;
    let ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
    let public_url = format!("http://127.0.0.1:{}/", ports[0]);
    let mut servers = Vec::new();
    // One after the other: the first takes the lease and drives.
    for (i, port) in ports.iter().enumerate() {
        servers.push(Replica::start(&database_url, *port, &public_url, dir.path(), i).await);
    }
    let students: Vec<Arc<Student>> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let base = &servers[i % servers.len()].base;
            Arc::new(Student::with_token(base, format!("student{i}"), token))
        })
        .collect();

    let launched = launch_and_watch(&students, vec![None; n]).await;
    let deletes =
        futures_util::future::join_all(students.iter().map(|s| s.delete_api_and_wait())).await;
    let peak_rss_kib = servers.iter().map(Replica::peak_rss_kib).sum();
    let sqlite = sqlite_counts(&servers[0].base).await;
    drop(servers);
    let result = ClassResult::of(launched, &deletes, peak_rss_kib, sqlite);
    report(&result);
    result
}

/// `n` registered users with an API token each, written into the
/// database (migrating it): their tokens.
async fn tokens_for(database_url: &str, n: usize) -> Vec<String> {
    let store = Store::connect(database_url).await.expect("the database");
    store.installation_id().await.expect("the installation id");
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let login = Login::parse(&format!("student{i}")).expect("a login");
        let id = GithubId::for_demo(&login);
        store.record_login(id, &login).await.expect("a user");
        store.register(id, "class start").await.expect("registered");
        let token = stackbinder::secret::generate();
        store
            .create_token(NewToken {
                github_id: id,
                label: "class start",
                secret_hash: &stackbinder::secret::hash(&token),
                scopes: "vm:read vm:launch vm:delete",
                expires_at: chrono::Utc::now() + chrono::Duration::days(1),
            })
            .await
            .expect("a token");
        tokens.push(token);
    }
    store.close().await;
    tokens
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One `stackbinder serve` on the simulated cloud.
struct Replica {
    child: tokio::process::Child,
    base: String,
}

impl Replica {
    async fn start(
        database_url: &str,
        port: u16,
        public_url: &str,
        dir: &std::path::Path,
        i: usize,
    ) -> Self {
        let log_path = dir.join(format!("replica{i}.log"));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let binary = std::env::var_os("CLASS_START_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_stackbinder").into());
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .env_remove("STACKBINDER_CONFIG")
            .env("RUST_LOG", "stackbinder=warn")
            .env("STACKBINDER_DATABASE__URL", database_url)
            .env("STACKBINDER_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("STACKBINDER_SERVER__PUBLIC_URL", public_url)
            .env("STACKBINDER_SERVER__BANNER", "class start benchmark")
            .env("STACKBINDER_GITHUB__CLIENT_ID", "class-start")
            .env("STACKBINDER_GITHUB__CLIENT_SECRET", "class-start-secret")
            .env("STACKBINDER_CLOUD__BACKEND", "simulated")
            .env("STACKBINDER_CLOUD__FLOATING_IP_POOL", "public")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the stackbinder binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let health = client.get(format!("{base}/healthz")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("replica {i} ended ({status}): {log}");
            }
            assert!(
                started.elapsed() < START_WITHIN,
                "replica {i} does not answer"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }

    fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("the server runs");
        proc_status_kib(&format!("/proc/{pid}/status"), "VmHWM:")
    }
}
