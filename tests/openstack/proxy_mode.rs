//! The OpenStack backend with the Jupyter proxy (`cloud.jupyter_access =
//! "proxy"`): `check` looks at the route to the VM network and at the
//! security groups' rules for Jupyter's port; a launch through the web
//! touches no floating IP and reaches Jupyter at the fixed address.

use crate::check::line;
use crate::fake_openstack::{NETWORK, POOL};
use crate::helpers::*;
use axum::http::Method;
use reqwest::Client;
use serde_json::json;
use stackbinder::cloud::Cloud;
use stackbinder::config::{Config, JupyterAccess};
use std::num::NonZero;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::app::web_app;

fn proxied(c: &mut stackbinder::config::CloudConfig) {
    c.jupyter_access = JupyterAccess::Proxy;
}

#[tokio::test]
async fn check_passes_when_this_host_reaches_the_vm_network_and_jupyter_is_closed_to_the_world() {
    // Arrange: the VM network is this host's loopback network (the fake's
    // default); Jupyter's port is open to stackbinder's group only.
    let env = setup_with(proxied, false).await;
    env.fake
        .world()
        .add_sg_rule("ssh-whitelist", 22, Some("0.0.0.0/0"), None);
    env.fake
        .world()
        .add_sg_rule("Open-top", 8888, None, Some("stackbinder-server-group"));

    // Act
    let items = env.cloud.check().await;

    // Assert
    assert!(items.iter().all(|i| i.ok), "{items:#?}");
    let whats: Vec<&str> = items.iter().map(|i| i.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "credentials",
            "image",
            "flavor",
            "key pair",
            "security groups",
            "Jupyter port",
            "network",
            "route to the VMs",
            "floating IP pool",
            "quotas"
        ]
    );
    let route = line(&items, "route to the VMs");
    assert!(
        route.detail.contains("in the VMs' subnet 127.0.0.0/8"),
        "{route:?}"
    );
    let private = env.fake.world().networks[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let subnets = env.fake.find_calls(Method::GET, "subnets");
    assert_eq!(subnets.len(), 1);
    assert_eq!(subnets[0].query["network_id"], private);
    let groups = env.fake.world().sgs_named(&["ssh-whitelist", "Open-top"]);
    let asked: Vec<String> = env
        .fake
        .find_calls(Method::GET, "security-group-rules")
        .iter()
        .map(|c| c.query["security_group_id"].clone())
        .collect();
    assert_eq!(
        asked,
        groups
            .iter()
            .map(|g| g.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn check_fails_on_an_unreachable_vm_network_and_a_jupyter_port_open_to_the_world() {
    // Arrange: the VMs are on a network this host has no way to.
    let env = setup_with(proxied, false).await;
    env.fake.world().set_subnet_cidr(NETWORK, "203.0.113.0/24");
    let rule = env
        .fake
        .world()
        .add_sg_rule("Open-top", 8888, Some("0.0.0.0/0"), None);

    // Act
    let items = env.cloud.check().await;

    // Assert
    let route = line(&items, "route to the VMs");
    assert!(!route.ok, "{route:?}");
    assert!(route.detail.contains("203.0.113.0/24"), "{route:?}");
    let fix = route.fix.as_deref().unwrap();
    assert!(
        fix.contains("jupyter_access = \"floating_ip\"") && fix.contains("route"),
        "{fix}"
    );
    let port = line(&items, "Jupyter port");
    assert!(!port.ok, "{port:?}");
    assert!(
        port.detail
            .contains("\"Open-top\" opens TCP port 8888 to 0.0.0.0/0"),
        "{port:?}"
    );
    let fix = port.fix.as_deref().unwrap();
    assert!(
        fix.contains(&format!("openstack security group rule delete {rule}"))
            && fix.contains("--remote-group"),
        "{fix}"
    );
    assert!(!line(&items, "quotas").ok, "not checked after failures");
}

#[tokio::test]
async fn check_looks_at_the_configured_jupyter_port_and_at_ipv6_rules() {
    let env = setup_with(proxied, false).await;
    env.fake
        .world()
        .add_sg_rule("Open-top", 8888, Some("0.0.0.0/0"), None);
    env.fake
        .world()
        .add_sg_rule("ssh-whitelist", 9999, Some("::/0"), None);
    let cloud = cloud_for(&env.config, &env.clouds_yaml).with_jupyter_port(9999);

    let items = cloud.check().await;

    let port = line(&items, "Jupyter port");
    assert!(!port.ok, "{port:?}");
    assert!(
        port.detail
            .contains("\"ssh-whitelist\" opens TCP port 9999 to ::/0")
            && !port.detail.contains("Open-top"),
        "{port:?}"
    );
}

#[tokio::test]
async fn floating_ip_mode_checks_neither_the_route_nor_the_jupyter_port() {
    let env = setup().await;
    env.fake.world().set_subnet_cidr(NETWORK, "203.0.113.0/24");
    env.fake
        .world()
        .add_sg_rule("Open-top", 8888, Some("0.0.0.0/0"), None);
    let items = env.cloud.check().await;
    assert!(items.iter().all(|i| i.ok), "{items:#?}");
    assert!(
        items
            .iter()
            .all(|i| i.what != "route to the VMs" && i.what != "Jupyter port")
    );
    assert!(env.fake.find_calls(Method::GET, "subnets").is_empty());
}

#[tokio::test]
async fn a_proxied_launch_through_the_web_touches_no_floating_ip() {
    // Arrange: a pool is configured and has addresses, and still the
    // proxy needs none.
    let env = setup_with(proxied, false).await;
    {
        let mut w = env.fake.world();
        w.server_address = "127.0.0.1".into();
        w.boot_polls = 2;
    }
    assert_eq!(env.config.floating_ip_pool.as_deref(), Some(POOL));
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud = env.config.clone();
    config.server.callback_url = Some("http://127.0.0.1:1/".parse().unwrap());
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = web_app::WebApp::start(config, cloud, "alice", Duration::from_secs(10)).await;

    // Act: launch; play the VM (report ready to the app itself).
    web.launch().await;
    web.wait_for("building", Duration::from_secs(20)).await;
    let data = web.launch_data_of(&env.fake.user_data(0)).await;
    assert_eq!(data.login, "alice");
    assert_eq!(
        data.callback_url.as_str(),
        "http://127.0.0.1:1/api/vm/callback"
    );
    let (port, probes) = jupyter_stand_in("alice").await;
    let report = json!({"vm": data.vm_id, "seq": 1, "phase": "ready", "port": port, "log": []});
    let status = Client::new()
        .post(format!("{}/api/vm/callback", web.base))
        .bearer_auth(&data.callback_secret)
        .json(&report)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let ready = web.wait_for("ready", Duration::from_secs(20)).await;

    // Assert: Jupyter was found at the fixed address under the base URL,
    // the link goes through stackbinder, and no floating IP was made,
    // attached or released, nor its quota read (the reconciler still
    // lists them: an earlier floating-IP deployment may have left some).
    assert!(probes.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        ready["jupyter_url"],
        format!("{}/user/alice/?token={}", web.base, data.jupyter_token)
    );
    assert_eq!(ready["address"], "127.0.0.1");
    web.delete().await;
    web.wait_for("deleted", Duration::from_secs(20)).await;
    let fip_calls: Vec<String> = env
        .fake
        .calls()
        .iter()
        .filter(|c| {
            (c.path.contains("floatingips") && c.method != Method::GET) || c.path.contains("quotas")
        })
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(fip_calls.is_empty(), "{fip_calls:?}");
    assert!(env.fake.fips().is_empty());
    assert_eq!(env.fake.server_count() + env.fake.volume_count(), 0);
}
