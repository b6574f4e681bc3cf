//! Failover between two replicas (issue #14) on the real control plane:
//! two `stackbinder serve` processes (the real binary) on one PostgreSQL
//! database (the throw-away cluster of `tests/support/postgres.rs`) and
//! the dev cloud. The leader is killed with `kill -9` as soon as Nova
//! lists the server it asked for; the standby takes the lease, finishes
//! the launch with that server (Nova holds exactly one of that name) and
//! deletes it, leaving nothing of ours in Nova, Cinder or Neutron.

use crate::dev::{self, Rest};
use crate::web::web_app::postgres;
use crate::web::web_app::replica::{self, Replica};
use serde_json::Value;
use stackbinder::domain::{VmId, VmState};
use stackbinder::store::{Store, VmRecord};
use std::time::Duration;

/// `server.lease_seconds` of both replicas: short, so the takeover is
/// quick, long enough that a busy machine renews it in time.
const LEASE_SECONDS: u64 = 5;
/// How long a replica may take to start or to change its role.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long the real control plane may take to build or delete a server.
const BOOT: Duration = Duration::from_secs(180);

/// `serve` on `database_url` and the dev cloud.
async fn replica(name: &'static str, database_url: &str) -> Replica {
    let lease = LEASE_SECONDS.to_string();
    let cloud = dev::cloud_env();
    let mut env: Vec<(&str, &str)> = cloud.iter().map(|(k, v)| (&**k, &**v)).collect();
    env.extend([
        ("STACKBINDER_DATABASE__URL", database_url),
        ("STACKBINDER_SERVER__LEASE_SECONDS", &lease),
        ("STACKBINDER_PROVISION__POLL_INTERVAL_MS", "500"),
    ]);
    Replica::start(name, &env, PATIENCE).await
}

/// Nova's servers named `name` (the project's, seen by the admin).
async fn servers_named(admin: &Rest, name: &str) -> Vec<Value> {
    let servers = admin
        .get("compute", &format!("/servers/detail?name=^{name}$"))
        .await;
    servers["servers"].as_array().unwrap().clone()
}

/// Wait until the VM is `state`; a failure on the way fails the test.
async fn wait_for_state(store: &Store, vm: VmId, state: VmState) -> VmRecord {
    dev::eventually(&format!("VM {vm} {}", state.as_str()), BOOT, || async {
        let record = store.vm(vm).await.unwrap().expect("the VM");
        assert_ne!(record.state, VmState::Failed, "{:?}", record.last_error);
        (record.state == state).then_some(record)
    })
    .await
}

/// When the test kills the leader.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KillAt {
    /// As soon as the API answered 202: the leader may not have asked
    /// Nova yet, or be waiting for its answer.
    Accepted,
    /// Once Nova lists the server the leader asked for.
    ServerListed,
}

/// Two replicas, a launch through the leader `a` killed at `kill_at` by
/// user `student<user>`, finished and deleted through `b`.
async fn failover(kill_at: KillAt, user: i64) {
    let _one = dev::exclusive().await;
    assert!(
        postgres::bindir().is_some() || std::env::var_os("TEST_POSTGRES_URL").is_some(),
        "the replica conformance test needs PostgreSQL (apt install postgresql)"
    );
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = postgres::database_url_for(dir.path());
    // Migrated before either replica starts, the installation id made.
    let store = Store::connect(&database_url).await.expect("the database");
    store.installation_id().await.unwrap();

    let mut a = replica("a", &database_url).await;
    a.wait_for_role("leader").await;
    let b = replica("b", &database_url).await;
    b.wait_for_role("standby").await;
    let token = replica::user_with_token(&store, user).await;
    let name = format!("sbconf-student{user}");

    // The leader records the launch, is woken to drive it and dies.
    let vm = a.launch_vm(&token).await;
    if kill_at == KillAt::ServerListed {
        dev::eventually("the leader's server in Nova", BOOT, || async {
            (!servers_named(&admin, &name).await.is_empty()).then_some(())
        })
        .await;
    }
    a.kill();
    let at_kill = store.vm(vm).await.unwrap().expect("the VM");
    eprintln!(
        "the leader died with the VM {} and its server {}",
        at_kill.state.as_str(),
        at_kill.server_id.as_deref().unwrap_or("unrecorded")
    );

    let took = b.wait_for_role("leader").await;
    eprintln!("the standby took the lease {took:?} after the leader went");
    assert!(
        took < Duration::from_secs(2 * LEASE_SECONDS + 10),
        "the standby took {took:?} to take a {LEASE_SECONDS} s lease"
    );
    let building = wait_for_state(&store, vm, VmState::Building).await;

    // Exactly one server of that name: the leader's, adopted, ACTIVE.
    let servers = servers_named(&admin, &name).await;
    assert_eq!(servers.len(), 1, "one server for the VM: {servers:#?}");
    let server = &servers[0];
    assert_eq!(server["status"], "ACTIVE", "{server:#}");
    assert_eq!(server["metadata"]["stackbinder_vm"], vm.to_string());
    let server_id = server["id"].as_str().unwrap().to_owned();
    assert_eq!(building.server_id.as_deref(), Some(server_id.as_str()));
    assert_eq!(building.name, name);
    assert!(building.floating_ip.is_some(), "{building:?}");

    b.delete(&token).await;
    wait_for_state(&store, vm, VmState::Deleted).await;
    dev::eventually("the server to go", BOOT, || async {
        (!admin
            .exists("compute", &format!("/servers/{server_id}"))
            .await)
            .then_some(())
    })
    .await;
    let ports = admin
        .get("network", &format!("/v2.0/ports?device_id={server_id}"))
        .await;
    assert_eq!(ports["ports"], serde_json::json!([]), "ports left");
    let (servers, volumes, fips) = admin.inventory().await;
    assert!(
        servers.is_empty() && volumes.is_empty() && fips.is_empty(),
        "left behind: {servers:?} {volumes:?} {fips:?}"
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_the_standby_finishes_a_launch_whose_leader_died_once_nova_listed_its_server() {
    failover(KillAt::ServerListed, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_the_standby_launches_a_vm_whose_leader_died_right_after_accepting_it() {
    failover(KillAt::Accepted, 2).await;
}
