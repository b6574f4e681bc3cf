//! A launch and a delete through the web pages, with what the real Nova,
//! Cinder and Neutron hold asserted after each.

use crate::dev::{self, Rest};
use crate::web::{App, REPO};
use base64::Engine;
use serde_json::Value;
use stackbinder::cloud_init::parse_boot_data;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);

async fn image_id(rest: &Rest) -> String {
    let images = rest
        .get("image", &format!("/v2/images?name={}", dev::IMAGE))
        .await;
    images["images"][0]["id"].as_str().unwrap().to_owned()
}

/// What the server of a `building` VM looks like in Nova, Cinder and
/// Neutron; returns (server id, volume id, floating IP id).
async fn assert_launched(rest: &Rest, view: &Value, login: &str) -> (String, String, String) {
    let vm_id = view["id"].as_str().unwrap();
    let servers = rest.get("compute", "/servers/detail").await;
    let server = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["stackbinder_vm"] == vm_id)
        .unwrap_or_else(|| panic!("no server with stackbinder_vm={vm_id}: {servers:#}"))
        .clone();
    let id = server["id"].as_str().unwrap().to_owned();

    // Nova: name, flavor, key pair, security groups, metadata, user data.
    assert_eq!(server["name"], format!("sbconf-{login}"));
    assert_eq!(server["status"], "ACTIVE");
    assert_eq!(server["flavor"]["original_name"], dev::FLAVOR);
    assert_eq!(server["key_name"], dev::KEY);
    let mut groups: Vec<&str> = server["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups, ["Open-top", "ssh-whitelist"], "{server:#}");
    let meta = &server["metadata"];
    assert_eq!(meta["stackbinder_login"], login);
    assert_eq!(meta["stackbinder_repo"], REPO);
    assert!(meta["stackbinder_owner"].is_string(), "{meta}");
    assert_eq!(
        server["image"], "",
        "boot from volume: no image on the server"
    );
    let user_data = server["OS-EXT-SRV-ATTR:user_data"]
        .as_str()
        .expect("user data");
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(user_data)
        .unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    let data = parse_boot_data(&user_data).expect("the boot data is in the user data Nova holds");
    assert_eq!(data.vm_id.to_string(), vm_id);
    assert!(
        !user_data.contains(REPO),
        "the owner's launch is not in the user data"
    );

    // Cinder: one boot volume from the image, 1 GB, deleted with the server.
    let attached = server["os-extended-volumes:volumes_attached"]
        .as_array()
        .unwrap();
    assert_eq!(attached.len(), 1, "{server:#}");
    assert_eq!(attached[0]["delete_on_termination"], true);
    let volume_id = attached[0]["id"].as_str().unwrap().to_owned();
    let volume = rest
        .get("block-storage", &format!("/volumes/{volume_id}"))
        .await["volume"]
        .clone();
    assert_eq!(volume["size"], 1);
    assert_eq!(volume["status"], "in-use");
    assert_eq!(volume["bootable"], "true");
    assert_eq!(
        volume["volume_image_metadata"]["image_id"],
        image_id(rest).await.as_str()
    );
    assert_eq!(volume["attachments"][0]["server_id"], id.as_str());

    // Neutron: a floating IP from the pool on the server's port, the one
    // the user is shown.
    let ports = rest
        .get("network", &format!("/v2.0/ports?device_id={id}"))
        .await;
    let port = ports["ports"][0]["id"].as_str().expect("a port").to_owned();
    let fips = rest
        .get("network", &format!("/v2.0/floatingips?port_id={port}"))
        .await["floatingips"]
        .clone();
    assert_eq!(fips.as_array().unwrap().len(), 1, "{fips:#}");
    let fip = &fips[0];
    // All three carry the installation's id.
    let installation = meta["stackbinder_instance"]
        .as_str()
        .expect("an installation id");
    assert_eq!(fip["description"], format!("stackbinder {installation}"));
    assert_eq!(volume["metadata"]["stackbinder_instance"], installation);
    assert_eq!(volume["metadata"]["stackbinder_vm"], vm_id);
    assert!(
        view.to_string()
            .contains(fip["floating_ip_address"].as_str().unwrap()),
        "the user sees the floating IP: {view:#}"
    );
    let public = rest.get("network", "/v2.0/networks?name=public").await;
    assert_eq!(fip["floating_network_id"], public["networks"][0]["id"]);
    (id, volume_id, fip["id"].as_str().unwrap().to_owned())
}

async fn assert_gone(rest: &Rest, server: &str, volume: &str, fip: &str, fip_released: bool) {
    dev::eventually("the server to go", Duration::from_secs(60), || async {
        (!rest.exists("compute", &format!("/servers/{server}")).await).then_some(())
    })
    .await;
    dev::eventually("the volume to go", Duration::from_secs(60), || async {
        (!rest
            .exists("block-storage", &format!("/volumes/{volume}"))
            .await)
            .then_some(())
    })
    .await;
    let path = format!("/v2.0/floatingips/{fip}");
    if fip_released {
        assert!(!rest.exists("network", &path).await, "IP released");
    } else {
        let kept = rest.get("network", &path).await;
        assert!(kept["floatingip"]["port_id"].is_null(), "{kept:#}");
        let description = kept["floatingip"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(description.starts_with("stackbinder "), "{kept:#}");
    }
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_launch_and_delete_leave_exactly_what_nova_cinder_and_neutron_should() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("alice", |_| {}).await;

    app.launch().await;
    let building = app.wait_for("building", BOOT).await;
    assert!(building["error"].is_null(), "{building:#}");
    let (server, volume, fip) = assert_launched(&admin, &building, "alice").await;

    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    assert_gone(&admin, &server, &volume, &fip, true).await;
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_kept_floating_ip_is_detached_and_reused_when_release_is_off() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("bob", |c| c.cloud.release_floating_ip = false).await;

    app.launch().await;
    let first = app.wait_for("building", BOOT).await;
    let (server, volume, fip) = assert_launched(&admin, &first, "bob").await;
    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    assert_gone(&admin, &server, &volume, &fip, false).await;

    // The next launch takes the kept address instead of a new one.
    app.launch().await;
    let second = app.wait_for("building", BOOT).await;
    let (server, volume, again) = assert_launched(&admin, &second, "bob").await;
    assert_eq!(again, fip, "the free floating IP of the project is reused");
    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    assert_gone(&admin, &server, &volume, &fip, false).await;
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            "network",
            &format!("/v2.0/floatingips/{fip}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_full_instance_quota_fails_the_launch_with_the_quota_in_words() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let (servers, _, _) = admin.inventory().await;
    let in_use = servers.len() as i64;
    admin.set_instance_quota(in_use).await;
    let app = App::spawn("carol", |_| {}).await;

    app.launch().await;
    let failed = app.wait_for("failed", BOOT).await;
    admin.set_instance_quota(100).await;

    let error = failed["error"].as_str().unwrap_or_default();
    let words = format!("quota exceeded: this project uses {in_use} of {in_use} instances");
    assert!(error.contains(&words), "{failed:#}");
    let page = app.get("/VM_status").await;
    assert!(page.contains(&words), "the status page says it: {page}");
    let (after, _, _) = admin.inventory().await;
    assert_eq!(after.len() as i64, in_use, "no server was created");
}
