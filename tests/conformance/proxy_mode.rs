//! With the Jupyter proxy (`cloud.jupyter_access = "proxy"`) on the dev
//! cloud: a launch allocates and attaches no floating IP, and `check`
//! reports what the real Neutron says of the route to the VM network and
//! of the security groups' rules for Jupyter's port (the dev cloud's
//! `Open-top` opens 8888 to 0.0.0.0/0, and this host has no route to
//! `stackbinder-net`'s 198.51.100.0/24).

use crate::check::{check, text};
use crate::dev::{self, Rest};
use crate::web::App;
use stackbinder::config::JupyterAccess;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);
const PROXY: (&str, &str) = ("STACKBINDER_CLOUD__JUPYTER_ACCESS", "proxy");

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_proxied_launch_allocates_no_floating_ip() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    // The pool stays configured: the proxy must still take nothing from it.
    let app = App::spawn("dora", |c| c.cloud.jupyter_access = JupyterAccess::Proxy).await;

    app.launch().await;
    let building = app.wait_for("building", BOOT).await;
    assert!(building["error"].is_null(), "{building:#}");

    // Nova has the server, Neutron its port on the VM network, and no
    // floating IP exists in the project at all.
    let servers = admin.get("compute", "/servers/detail").await;
    let server = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["stackbinder_vm"] == building["id"])
        .unwrap_or_else(|| panic!("no server of the VM: {servers:#}"))
        .clone();
    let id = server["id"].as_str().unwrap();
    let ports = admin
        .get("network", &format!("/v2.0/ports?device_id={id}"))
        .await;
    let fixed = ports["ports"][0]["fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("a fixed address")
        .to_owned();
    let (_, _, fips) = admin.inventory().await;
    assert!(fips.is_empty(), "no floating IP in the project: {fips:?}");
    assert_eq!(building["address"], fixed.as_str(), "{building:#}");
    assert_eq!(
        building["warnings"],
        serde_json::json!([]),
        "no warning of missing floating IPs: {building:#}"
    );

    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    let (servers, volumes, fips) = admin.inventory().await;
    assert!(
        servers.is_empty() && volumes.is_empty() && fips.is_empty(),
        "{servers:?} {volumes:?} {fips:?}"
    );
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_check_in_proxy_mode_reports_the_open_jupyter_port_and_the_missing_route() {
    let _one = dev::exclusive().await;

    let out = check(&[PROXY]);
    let said = text(&out);

    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(
            "FAIL Jupyter port: security group \"Open-top\" opens TCP port 8888 to 0.0.0.0/0"
        ),
        "{said}"
    );
    assert!(
        said.contains("fix: delete the rule (`openstack security group rule delete ")
            && said.contains("--remote-group"),
        "{said}"
    );
    assert!(
        said.contains("FAIL route to the VMs: this host has no address in and no route to the VMs' subnets (198.51.100.0/24)"),
        "{said}"
    );
    assert!(
        said.contains("cloud.jupyter_access = \"floating_ip\""),
        "{said}"
    );
    assert!(
        said.contains("OK   floating IP pool"),
        "the pool is still looked up: {said}"
    );
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_check_in_proxy_mode_passes_the_port_with_only_closed_groups() {
    let _one = dev::exclusive().await;

    // ssh-whitelist opens 22 to the world, not Jupyter's port.
    let out = check(&[
        PROXY,
        ("STACKBINDER_CLOUD__SECURITY_GROUPS", "[\"ssh-whitelist\"]"),
    ]);
    let said = text(&out);

    assert!(
        said.contains(
            "OK   Jupyter port: no rule of ssh-whitelist opens TCP port 8888 to the internet"
        ),
        "{said}"
    );
}
