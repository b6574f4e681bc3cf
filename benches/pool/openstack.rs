//! The real control plane of `scripts/openstack-dev.sh`: stackbinder in
//! process on its non-admin entry (default `provision` settings), behind
//! the proxy (`cloud.jupyter_access = "proxy"`: no floating IPs), with
//! real Keystone, Nova, Cinder and Neutron calls: a pool VM and a cold
//! launch are each a real boot from volume on Nova's fake virt driver.
//! The VMs are played over the real wire (`played_vm`).
//!
//! The proxy reaches a VM's Jupyter at its fixed address, so the VMs get
//! a network of the bench's own whose subnet is on this host's loopback
//! (127.51.100.0/24, no DHCP, no gateway: Neutron's IPAM hands out the
//! addresses and nothing else uses them), and the played VM's Jupyter
//! listens on its fixed address there. Everything made in the cloud is
//! deleted at the end, and the admin's inventory is checked empty.
//!
//! What a real VM takes on a real cloud (its OS boot, the clone, the build,
//! pulling the image) is not here: nothing boots. The VM's own time is its
//! Jupyter start; the rest of click → ready is stackbinder and OpenStack.

use crate::dev::{self, Rest};
use crate::measure::{self, Launch, Run};
use crate::played_vm::{Played, PlayedVms};
use crate::report::{self, Notes, secs};
use crate::web_app::WebApp;
use reqwest::Method;
use serde_json::json;
use stackbinder::cloud::Cloud;
use stackbinder::config::{Config, JupyterAccess};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bench's network, and its subnet on the loopback.
const NETWORK: &str = "sbbench-pool-loopback";
const CIDR: &str = "127.51.100.0/24";
/// A launch, a fill or a refill not done within this long has failed.
const LIMIT: Duration = Duration::from_secs(600);

/// What the mode needs from the environment.
pub struct Env {
    /// The played VMs' Jupyter.
    python: PathBuf,
}

impl Env {
    /// The dev cloud's clouds.yaml and a python with jupyter-server, or
    /// what is missing.
    pub fn from_environment() -> Result<Self, String> {
        let clouds = std::env::var_os(dev::CLOUDS_VAR).filter(|p| !p.is_empty());
        if !clouds.is_some_and(|p| PathBuf::from(p).is_file()) {
            return Err(format!(
                "the openstack mode needs the dev cloud: scripts/openstack-dev.sh up, then \
                 eval \"$(scripts/openstack-dev.sh env)\" (sets {}, missing or not a file)",
                dev::CLOUDS_VAR
            ));
        }
        let python = std::env::var_os("TEST_JUPYTER_PYTHON")
            .filter(|p| !p.is_empty())
            .ok_or(
                "the openstack mode needs TEST_JUPYTER_PYTHON, a python with jupyter-server \
                 (the played VMs' Jupyter)",
            )?;
        Ok(Self {
            python: python.into(),
        })
    }
}

pub async fn run(env: Env, size: u32) {
    println!(
        "## warm pool on the dev control plane: {}, pool of {size}, proxy mode",
        report::machine()
    );
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    // What an earlier run that failed left.
    admin.purge().await;
    delete_networks(&admin).await;
    create_network(&admin).await;
    let measured = tokio::spawn(measure_on_cloud(env, size, admin.clone())).await;
    admin.purge().await;
    delete_networks(&admin).await;
    let (servers, volumes, fips) = admin.inventory().await;
    assert!(
        servers.is_empty() && volumes.is_empty() && fips.is_empty(),
        "left behind: {servers:?} {volumes:?} {fips:?}"
    );
    println!("cleaned up: no server, volume, floating IP or bench network left in the project");
    if let Err(failed) = measured {
        std::panic::resume_unwind(failed.into_panic());
    }
}

async fn measure_on_cloud(env: Env, size: u32, admin: Rest) {
    let mut config = Config::defaults();
    config.cloud = dev::cloud_config();
    config.cloud.jupyter_access = JupyterAccess::Proxy;
    config.cloud.network = Some(NETWORK.into());
    config.cloud.name_prefix = "sbbench-".into();
    measure::with_pool(&mut config, size);
    let cloud: Arc<dyn Cloud> = Arc::new(dev::backend(&config.cloud));
    let played = PlayedVms::start(admin, env.python);
    let started = Instant::now();
    let app = WebApp::start(config, cloud, "student0", Duration::from_secs(60)).await;
    let run = measure::run(&app, size, started, LIMIT).await;
    let own = |l: &Launch| played.of(&l.id).jupyter_start.unwrap_or_default();
    let notes = Notes {
        vm_own: "its Jupyter start (a real jupyter-server on this machine); the clone, build \
                 and OS boot of a real VM are not in these figures",
        boot: "a boot from volume on the real Nova, Cinder and Neutron with the fake virt driver",
    };
    report::print(&run, own, &notes);
    breakdown(&run, &played);
    // Stopped before the cloud is cleaned: nothing boots a new VM then.
    drop(app);
    drop(played);
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Where the time of the median pooled launch and of the cold one went,
/// by the played VM's clock.
fn breakdown(run: &Run, played: &PlayedVms) {
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let at = |l: &Launch| {
        let vm: Played = played.of(&l.id);
        let (Some(assigned), Some(sent)) = (vm.assigned, vm.ready_sent) else {
            panic!("the played VM of {} has no job or no ready report", l.id);
        };
        (vm, assigned, sent, l.clicked + l.took)
    };
    let p50 = run.p50();
    let (vm, assigned, sent, ready) = at(p50);
    println!(
        "pooled p50: click → its job at the VM {} (the claim, the answer to the held request); \
         the VM's reports and Jupyter start {} (Jupyter {}); its ready report → ready on /api/vm {} \
         (the readiness probe, the owner's next poll)",
        ms(assigned - p50.clicked),
        ms(sent - assigned),
        ms(vm.jupyter_start.unwrap_or_default()),
        ms(ready - sent),
    );
    let (vm, assigned, sent, ready) = at(&run.cold);
    let active = vm.active.expect("seen ACTIVE");
    println!(
        "cold: click → server ACTIVE seen {} s (quota checks, Cinder volume from the image, \
         Nova boot; seen within 0.5 s); → its job at the VM {}; reports and Jupyter start {}; \
         → ready on /api/vm {}",
        secs(active - run.cold.clicked),
        ms(assigned - active),
        ms(sent - assigned),
        ms(ready - sent),
    );
}

/// A network of the project with the subnet on the loopback.
async fn create_network(admin: &Rest) {
    let (status, network) = admin
        .send(
            Method::POST,
            "network",
            "/v2.0/networks",
            Some(json!({"network": {"name": NETWORK}})),
        )
        .await;
    assert_eq!(status, 201, "the bench's network: {network}");
    let (status, subnet) = admin
        .send(
            Method::POST,
            "network",
            "/v2.0/subnets",
            Some(json!({"subnet": {
                "network_id": network["network"]["id"],
                "name": format!("{NETWORK}-subnet"),
                "ip_version": 4,
                "cidr": CIDR,
                "gateway_ip": null,
                "enable_dhcp": false,
            }})),
        )
        .await;
    assert_eq!(status, 201, "the bench's subnet on {CIDR}: {subnet}");
}

/// Delete the bench's networks (their ports went with the servers).
async fn delete_networks(admin: &Rest) {
    let found = admin
        .get("network", &format!("/v2.0/networks?name={NETWORK}"))
        .await;
    for network in found["networks"].as_array().into_iter().flatten() {
        let id = network["id"].as_str().unwrap_or_default();
        let path = &format!("/v2.0/networks/{id}");
        let deleted = dev::eventually("the bench's network to go", LIMIT, || async move {
            // 409 while a port of a deleted server is still going.
            let (status, _) = admin.send(Method::DELETE, "network", path, None).await;
            matches!(status, 204 | 404).then_some(())
        });
        deleted.await;
    }
}
