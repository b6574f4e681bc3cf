//! Several replicas on one PostgreSQL database (issue #14): two `stackbinder
//! serve` processes (the real binary) share a database of the throw-away
//! cluster (`tests/support/postgres.rs`) and the fake OpenStack served by
//! this test, with a short lease. Only the lease holder drives; when it is
//! killed or cut off from the database, the other takes over and finishes
//! its work, and the cloud sees every server created once.
//!
//! The replicas authenticate to the fake differently (one with a password,
//! one with an application credential), so the fake's log says which
//! replica made each call. Users and their API tokens are written into the
//! database by the test; the replicas are driven through `/api/v1`.
//!
//! These tests need PostgreSQL whatever `TEST_STORE` says. Without its
//! server programs they are skipped with a message, except under `CI=true`,
//! where they fail.

use crate::app::web_app::postgres;
use crate::app::web_app::replica::{self, Replica};
use crate::fake_openstack::{Call, FakeOpenStack, IMAGE, KEY, POOL};
use axum::http::Method;
use reqwest::StatusCode;
use stackbinder::cloud::META_VM;
use stackbinder::domain::{VmId, VmState};
use stackbinder::store::Store;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// `server.lease_seconds` of both replicas.
const LEASE_SECONDS: u64 = 2;
/// The longest anything here may take before the test gives up.
const WAIT: Duration = Duration::from_secs(30);
/// How each replica authenticates to the fake (what its calls carry).
const BY_PASSWORD: &str = "password";
const BY_APP_CREDENTIAL: &str = "application_credential";

/// Poll `check` until it gives a value, at most `WAIT`.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl FnMut() -> F,
) -> T {
    replica::poll(what, WAIT, check).await
}

/// One database, one fake cloud, and the clouds.yaml files the replicas
/// read; the test's own connection to the database.
struct Shared {
    fake: FakeOpenStack,
    database_url: String,
    store: Store,
    dir: TempDir,
}

impl Shared {
    async fn start() -> Self {
        let fake = FakeOpenStack::start().await;
        {
            // The VMs are played by the test on this host.
            let mut w = fake.world();
            w.server_address = "127.0.0.1".into();
            w.pool_free = vec!["127.0.0.1".into()];
            w.boot_polls = 2;
        }
        let dir = tempfile::tempdir().unwrap();
        for (file, yaml) in [
            (BY_PASSWORD, fake.clouds_yaml_password()),
            (BY_APP_CREDENTIAL, fake.clouds_yaml_app_credential()),
        ] {
            std::fs::write(dir.path().join(format!("{file}.yaml")), yaml).unwrap();
        }
        let database_url = postgres::database_url_for(dir.path());
        // Migrated here, before either replica starts, and the
        // installation id made (each replica then finds it).
        let store = Store::connect(&database_url).await.expect("the database");
        store.installation_id().await.unwrap();
        Self {
            fake,
            database_url,
            store,
            dir,
        }
    }

    /// A registered user with an API token for their VM: the token.
    async fn user(&self, n: i64) -> String {
        replica::user_with_token(&self.store, n).await
    }

    /// `serve` with the database at `database_url`, authenticating to the
    /// fake `by` (`BY_PASSWORD` or `BY_APP_CREDENTIAL`).
    async fn replica(&self, name: &'static str, by: &str, database_url: &str) -> Replica {
        let clouds_yaml = self.dir.path().join(format!("{by}.yaml"));
        let lease = LEASE_SECONDS.to_string();
        let env: Vec<(&str, &str)> = vec![
            ("STACKBINDER_DATABASE__URL", database_url),
            ("STACKBINDER_SERVER__LEASE_SECONDS", &lease),
            ("STACKBINDER_PROVISION__POLL_INTERVAL_MS", "50"),
            ("STACKBINDER_CLOUD__BACKEND", "openstack"),
            ("STACKBINDER_CLOUD__CLOUD", "fake"),
            ("STACKBINDER_CLOUD__IMAGE", IMAGE),
            ("STACKBINDER_CLOUD__KEY_NAME", KEY),
            ("STACKBINDER_CLOUD__JUPYTER_ACCESS", "floating_ip"),
            ("STACKBINDER_CLOUD__FLOATING_IP_POOL", POOL),
            ("STACKBINDER_CLOUD__REQUEST_TIMEOUT_SECONDS", "5"),
            ("OS_CLIENT_CONFIG_FILE", clouds_yaml.to_str().unwrap()),
        ];
        Replica::start(name, &env, WAIT).await
    }

    /// Calls of `method` to a path ending in `suffix` are answered `after`
    /// they took effect.
    fn answer_late(&self, method: Method, suffix: &str, after: Duration) {
        self.fake
            .world()
            .late_answers
            .push((method, suffix.to_owned(), after));
    }

    /// The calls made with a token got `by` (one replica's calls).
    fn calls_by(&self, by: &str) -> Vec<Call> {
        let calls = self.fake.calls().into_iter();
        calls
            .filter(|c| c.credential.as_deref() == Some(by))
            .collect()
    }

    /// Every `POST /servers` the fake received.
    fn creates(&self) -> Vec<Call> {
        self.fake
            .find_calls(Method::POST, "servers")
            .into_iter()
            .filter(|c| c.path == "servers")
            .collect()
    }

    /// The `POST /servers` calls for VM `vm`.
    fn creates_of(&self, vm: &str) -> usize {
        self.creates()
            .iter()
            .filter(|c| {
                c.body.as_ref().unwrap()["server"]["metadata"][META_VM].as_str() == Some(vm)
            })
            .count()
    }

    async fn wait_for_state(&self, vm: VmId, state: VmState) {
        poll(&format!("VM {vm} {}", state.as_str()), || async move {
            let record = self.store.vm(vm).await.unwrap().expect("the VM");
            (record.state == state).then_some(())
        })
        .await
    }

    /// Nothing of ours is left in the cloud.
    fn assert_nothing_left(&self) {
        assert_eq!(self.fake.server_count(), 0, "servers left");
        assert_eq!(self.fake.volume_count(), 0, "volumes left");
        assert!(
            self.fake.fips().is_empty(),
            "floating IPs left: {:?}",
            self.fake.fips()
        );
    }
}

/// Two replicas on `shared`'s database, `a` the leader (started first,
/// reaching the database through `a_database_url`) and `b` standing by.
async fn leader_and_standby(shared: &Shared, a_database_url: &str) -> (Replica, Replica) {
    let a = shared.replica("a", BY_PASSWORD, a_database_url).await;
    a.wait_for_role("leader").await;
    let b = shared
        .replica("b", BY_APP_CREDENTIAL, &shared.database_url)
        .await;
    b.wait_for_role("standby").await;
    (a, b)
}

/// A Jupyter stand-in on 127.0.0.1 for the test's logins: its port.
async fn jupyter() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|| async { "{\"version\": \"2.14.0\"}" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The takeover is within the lease: the lease lapses at most
/// `LEASE_SECONDS` after the leader's last renewal, and the standby tries
/// every third of it. (The margin is for a loaded machine.)
fn assert_within_lease(took: Duration) {
    eprintln!("the standby took the lease {took:?} after the leader went");
    assert!(
        took < Duration::from_secs(2 * LEASE_SECONDS + 2),
        "the standby took {took:?} to take a {LEASE_SECONDS} s lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_finishes_a_launch_whose_leader_was_killed_after_asking_for_the_server() {
    if !postgres::available() {
        return;
    }
    let shared = Shared::start().await;
    let (mut a, b) = leader_and_standby(&shared, &shared.database_url).await;
    let token = shared.user(1).await;
    // The leader's `POST /servers` makes the server, and its answer would
    // come too late: the leader dies first, with the server unrecorded.
    shared.answer_late(Method::POST, "/servers", WAIT);

    // Recorded by the standby; the leader is woken and asks for the server.
    let vm = b.launch_vm(&token).await;
    poll("the leader's POST /servers", || async {
        (shared.creates_of(&vm.to_string()) == 1).then_some(())
    })
    .await;
    a.kill();
    shared.fake.world().late_answers.clear();

    assert_within_lease(b.wait_for_role("leader").await);
    shared.wait_for_state(vm, VmState::Building).await;
    let port = jupyter().await;
    b.report_ready(&shared.fake.user_data(0), port).await;
    shared.wait_for_state(vm, VmState::Ready).await;
    assert_eq!(
        shared.creates_of(&vm.to_string()),
        1,
        "the standby adopted the leader's server, it made none"
    );
    assert_eq!(shared.fake.server_count(), 1);

    b.delete(&token).await;
    shared.wait_for_state(vm, VmState::Deleted).await;
    shared.assert_nothing_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_finishes_a_delete_whose_leader_was_killed_in_the_middle() {
    if !postgres::available() {
        return;
    }
    let shared = Shared::start().await;
    let (mut a, b) = leader_and_standby(&shared, &shared.database_url).await;
    let token = shared.user(2).await;
    let vm = a.launch_vm(&token).await;
    shared.wait_for_state(vm, VmState::Building).await;
    let server = shared.store.vm(vm).await.unwrap().unwrap().server_id;
    let server = server.expect("the server is recorded");

    // The leader has asked Nova to delete the server, and dies before the
    // answer (and the volume and the floating IP).
    shared.answer_late(Method::DELETE, &format!("/servers/{server}"), WAIT);
    b.delete(&token).await;
    poll("the leader's DELETE of the server", || async {
        let deletes = shared
            .fake
            .find_calls(Method::DELETE, &format!("servers/{server}"));
        (!deletes.is_empty()).then_some(())
    })
    .await;
    a.kill();
    shared.fake.world().late_answers.clear();

    assert_within_lease(b.wait_for_role("leader").await);
    shared.wait_for_state(vm, VmState::Deleted).await;
    shared.assert_nothing_left();
    assert_eq!(shared.creates_of(&vm.to_string()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_stops_driving_before_the_standby_starts() {
    if !postgres::available() {
        return;
    }
    let shared = Shared::start().await;
    let relay = Relay::start(&shared.database_url).await;
    let (a, b) = leader_and_standby(&shared, &relay.database_url).await;
    let token = shared.user(3).await;
    // The leader's quota check before its `POST /servers` is answered
    // long after the lease could have passed to the standby: a leader
    // that went on driving would then create the server.
    let late = Duration::from_secs(2 * LEASE_SECONDS + 1);
    shared.answer_late(Method::GET, "/compute/v2.1/limits", late);

    let vm = b.launch_vm(&token).await;
    poll("the leader's quota check", || async {
        let checks = shared.fake.find_calls(Method::GET, "limits");
        (!checks.is_empty()).then_some(())
    })
    .await;
    relay.cut();
    let cut_at = Instant::now();
    shared.fake.world().late_answers.clear();
    assert_within_lease(b.wait_for_role("leader").await);
    // The cut-off replica's health check says so rather than hanging with
    // its database connections (/healthz_answers_503_during_a_partition).
    assert_eq!(
        a.health_status().await,
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    shared.wait_for_state(vm, VmState::Building).await;

    // Still cut off, the old leader gets its quota check answered: it
    // must not go on with the launch.
    let answered_at = cut_at + late;
    poll("the old leader's answer to be due and gone by", || async {
        let after = shared
            .calls_by(BY_PASSWORD)
            .into_iter()
            .any(|c| c.at > answered_at);
        assert!(
            !after,
            "the old leader went on driving after it lost the lease"
        );
        (Instant::now() > answered_at + Duration::from_secs(1)).then_some(())
    })
    .await;
    // The network comes back; the old leader stands by.
    relay.heal();
    a.wait_for_role("standby").await;
    let creates = shared.creates();
    assert_eq!(creates.len(), 1, "one server for the VM");
    assert_eq!(creates[0].credential.as_deref(), Some(BY_APP_CREDENTIAL));
    let record = shared.store.vm(vm).await.unwrap().unwrap();
    assert_eq!(record.state, VmState::Building, "{record:?}");

    // Every call of the old leader came before the first of the new one.
    let last_old = shared.calls_by(BY_PASSWORD).iter().map(|c| c.at).max();
    let first_new = shared
        .calls_by(BY_APP_CREDENTIAL)
        .iter()
        .map(|c| c.at)
        .min();
    let (last_old, first_new) = (last_old.expect("the old leader drove"), first_new.unwrap());
    assert!(
        last_old < first_new,
        "the old leader called the cloud {:?} after the new one began",
        last_old - first_new,
    );

    b.delete(&token).await;
    shared.wait_for_state(vm, VmState::Deleted).await;
    shared.assert_nothing_left();
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clicks_spread_over_both_replicas_make_one_vm_per_user() {
    if !postgres::available() {
        return;
    }
    const USERS: i64 = 10;
    const CLICKS_EACH: usize = 5;
    let shared = Shared::start().await;
    {
        let mut w = shared.fake.world();
        w.pool_free = (10..30).map(|i| format!("192.0.2.{i}")).collect();
    }
    let (a, b) = leader_and_standby(&shared, &shared.database_url).await;
    let mut tokens = Vec::new();
    for n in 0..USERS {
        tokens.push(shared.user(100 + n).await);
    }

    // Every user clicks five times at once, the clicks alternating between
    // the replicas (as a load balancer would spread them).
    let replicas = [&a, &b];
    let clicks = tokens.iter().enumerate().flat_map(|(u, token)| {
        (0..CLICKS_EACH).map(move |c| async move {
            let replica = replicas[(u * CLICKS_EACH + c) % 2];
            (token, replica.launch(token).await.status())
        })
    });
    let answers = futures_util::future::join_all(clicks).await;
    assert_eq!(answers.len(), 50);
    for token in &tokens {
        let mine: Vec<StatusCode> = answers
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, s)| *s)
            .collect();
        let accepted = mine.iter().filter(|s| **s == StatusCode::ACCEPTED).count();
        assert_eq!(accepted, 1, "one launch accepted per user: {mine:?}");
        assert!(
            mine.iter()
                .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::CONFLICT),
            "the others are told the user has a VM: {mine:?}"
        );
    }

    // Each VM is driven to its server once.
    let vms = shared.store.list_vms(true).await.unwrap();
    assert_eq!(vms.len(), USERS as usize, "{vms:?}");
    let mut owners: Vec<i64> = vms.iter().map(|v| v.owner_id.0).collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), USERS as usize, "one VM per user");
    for vm in &vms {
        shared.wait_for_state(vm.id, VmState::Building).await;
    }
    assert_eq!(shared.creates().len(), USERS as usize);
    for vm in &vms {
        assert_eq!(shared.creates_of(&vm.id.to_string()), 1, "{}", vm.id);
    }
    assert_eq!(shared.fake.server_count(), USERS as usize);
    // Only the leader drives: the standby never called the cloud.
    let standby_calls = shared.calls_by(BY_APP_CREDENTIAL);
    assert!(standby_calls.is_empty(), "the standby called the cloud");
}

/// A TCP relay between one replica and PostgreSQL that the test can cut:
/// cut, it accepts and holds connections and passes no byte either way
/// (a partition, not a refusal: the replica's queries hang); healed, what
/// was held flows on.
struct Relay {
    database_url: String,
    cut: watch::Sender<bool>,
}

impl Relay {
    async fn start(database_url: &str) -> Self {
        let mut url = url::Url::parse(database_url).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        url.set_port(Some(listener.local_addr().unwrap().port()))
            .unwrap();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pump(client_read, server_write, cut_rx.clone()),
                        pump(server_read, client_write, cut_rx),
                    );
                });
            }
        });
        Self {
            database_url: url.to_string(),
            cut,
        }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn heal(&self) {
        self.cut.send_replace(false);
    }
}

/// Copy `from` to `to`, holding each chunk while the relay is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.wait_for(|cut| !*cut).await.is_err() {
            break;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
