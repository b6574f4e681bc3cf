//! The warm pool on the dev cloud, behind the proxy: a pool of two boots,
//! a launch claims one (Nova renames it and marks it as the user's, and no
//! floating IP is allocated), the pool refills, and deleting the VM leaves
//! nothing of it. The fake virt driver boots nothing, so the pool VMs'
//! first request for their job is played through the store.

use crate::dev::{self, Rest};
use crate::web::App;
use serde_json::Value;
use stackbinder::config::JupyterAccess;
use stackbinder::domain::LaunchPath;
use stackbinder::store::{PoolState, PoolVm};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(180);

async fn wait_for_pool(app: &App, what: &str, done: impl Fn(&[PoolVm]) -> bool) -> Vec<PoolVm> {
    let deadline = Instant::now() + BOOT;
    loop {
        let pool = app.provisioner().store().pool_vms().await.unwrap();
        if done(&pool) {
            return pool;
        }
        assert!(Instant::now() < deadline, "waited for {what}: {pool:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn server(admin: &Rest, id: &str) -> Value {
    admin.get("compute", &format!("/servers/{id}")).await["server"].clone()
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_launch_claims_a_pool_vm_which_is_renamed_and_refilled() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("pia", |c| {
        c.cloud.jupyter_access = JupyterAccess::Proxy;
        c.pool.size = 2;
    })
    .await;

    // A pool of two boots; both ask for their job.
    let booted = wait_for_pool(&app, "two booted pool VMs", |pool| {
        pool.len() == 2
            && pool
                .iter()
                .all(|vm| vm.state == PoolState::Booting && vm.address.is_some())
    })
    .await;
    for vm in &booted {
        let marks = &server(&admin, vm.server_id.as_deref().unwrap()).await["metadata"];
        assert_eq!(marks["stackbinder_pool"], "1", "{marks}");
        app.provisioner()
            .store()
            .pool_vm_polled(vm.id)
            .await
            .unwrap();
    }

    // The launch claims one.
    app.launch().await;
    let building = app.wait_for("building", BOOT).await;
    let vm = app
        .provisioner()
        .store()
        .vm(building["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(vm.launch_path, LaunchPath::Pool);
    let claimed = vm.server_id.clone().unwrap();
    assert!(
        booted
            .iter()
            .any(|p| p.server_id.as_deref() == Some(claimed.as_str()))
    );
    let deadline = Instant::now() + BOOT;
    let renamed = loop {
        let s = server(&admin, &claimed).await;
        if s["name"] == vm.name.as_str() {
            break s;
        }
        assert!(Instant::now() < deadline, "not renamed: {s:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        renamed["metadata"]["stackbinder_owner"],
        vm.owner_id.to_string()
    );
    assert_eq!(renamed["metadata"]["stackbinder_vm"], vm.id.to_string());
    assert!(
        renamed["metadata"].get("stackbinder_pool").is_none(),
        "{renamed:#}"
    );
    let (_, _, fips) = admin.inventory().await;
    assert!(fips.is_empty(), "no floating IP behind the proxy: {fips:?}");

    // The pool refills with a new VM.
    let refilled = wait_for_pool(&app, "the refill", |pool| {
        pool.len() == 2 && pool.iter().all(|p| p.id != vm.id && p.server_id.is_some())
    })
    .await;
    assert!(refilled.iter().any(|p| booted.iter().all(|b| b.id != p.id)));

    // Deleting the VM leaves nothing of it; only the pool's servers stay.
    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    let (servers, volumes, fips) = admin.inventory().await;
    assert!(!servers.contains(&claimed), "{servers:?}");
    for volume in &vm.volume_ids.0 {
        assert!(!volumes.contains(volume), "{volumes:?}");
    }
    let pool_servers: Vec<String> = refilled
        .iter()
        .filter_map(|p| p.server_id.clone())
        .collect();
    assert!(
        servers.iter().all(|s| pool_servers.contains(s)),
        "{servers:?}"
    );
    assert!(fips.is_empty(), "{fips:?}");
    drop(app);
    admin.purge().await;
}
