//! A user's home volume (`[storage]`) on the real Nova and Cinder: a
//! launch boots with two volumes (boot + home); the delete takes the boot
//! volume and leaves the home volume `available` with our metadata; the
//! relaunch attaches that same volume to the new server; "delete my
//! storage" deletes it; nothing of ours is left.

use crate::dev::{self, Rest};
use crate::web::{App, csrf_from};
use serde_json::Value;
use stackbinder::cloud::{META_HOME, META_INSTANCE};
use stackbinder::domain::{GithubId, Login};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);
const LOGIN: &str = "hana";

/// The server of a `building` VM, and the ids of its attached volumes.
async fn server_of(rest: &Rest, view: &Value) -> (String, Vec<String>) {
    let vm_id = view["id"].as_str().unwrap();
    let servers = rest.get("compute", "/servers/detail").await;
    let server = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["stackbinder_vm"] == vm_id)
        .unwrap_or_else(|| panic!("no server with stackbinder_vm={vm_id}: {servers:#}"))
        .clone();
    let volumes = server["os-extended-volumes:volumes_attached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    (server["id"].as_str().unwrap().to_owned(), volumes)
}

async fn volume(rest: &Rest, id: &str) -> Value {
    rest.get("block-storage", &format!("/volumes/{id}")).await["volume"].clone()
}

/// Wait until the volume `id` is `available` (Nova detaches it after the
/// server is gone); what Cinder then shows of it.
async fn available(rest: &Rest, id: &str) -> Value {
    dev::eventually("the home volume to be free", BOOT, || async {
        let v = volume(rest, id).await;
        (v["status"] == "available").then_some(v)
    })
    .await
}

async fn gone(rest: &Rest, id: &str, what: &str) {
    dev::eventually(what, Duration::from_secs(60), || async {
        (!rest
            .exists("block-storage", &format!("/volumes/{id}"))
            .await)
            .then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_the_home_volume_outlives_the_vm_is_reattached_and_goes_with_the_storage() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn(LOGIN, |c| c.storage.home_volume_gb = 1).await;
    let owner = GithubId::for_demo(&Login::parse(LOGIN).unwrap()).to_string();

    // Launch: boot volume and home volume, both attached.
    app.launch().await;
    let first = app.wait_for("building", BOOT).await;
    assert!(first["error"].is_null(), "{first:#}");
    let (server, attached) = server_of(&admin, &first).await;
    assert_eq!(attached.len(), 2, "boot + home: {attached:?}");
    let mut home = None;
    let mut boot = None;
    for id in &attached {
        let v = volume(&admin, id).await;
        assert_eq!(v["status"], "in-use", "{v:#}");
        if v["metadata"][META_HOME] == owner.as_str() {
            home = Some(id.clone());
        } else {
            boot = Some(id.clone());
        }
    }
    let home = home.expect("one of them is the home volume");
    let boot = boot.expect("the other the boot volume");
    let made = volume(&admin, &home).await;
    assert_eq!(made["size"], 1);
    assert_eq!(made["name"], format!("sbconf-home-{LOGIN}"));

    // Delete: the boot volume goes, the home volume stays, free and ours.
    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    gone(&admin, &boot, "the boot volume to go").await;
    let kept = available(&admin, &home).await;
    let installation = app.installation().await;
    assert_eq!(kept["metadata"][META_HOME], owner.as_str());
    assert_eq!(kept["metadata"][META_INSTANCE], installation.as_str());

    // Relaunch: the same volume, on the new server.
    app.launch().await;
    let second = app.wait_for("building", BOOT).await;
    assert!(second["error"].is_null(), "{second:#}");
    let (again, attached) = server_of(&admin, &second).await;
    assert_ne!(again, server, "a new server");
    assert_eq!(attached.len(), 2, "{attached:?}");
    assert!(
        attached.contains(&home),
        "the same home volume: {attached:?}"
    );
    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    available(&admin, &home).await;

    // Delete my storage, typed with the login.
    let page = app.get("/storage").await;
    let status = app
        .post(
            "/storage",
            &[("csrf", &csrf_from(&page)), ("confirm", LOGIN)],
        )
        .await;
    assert_eq!(status, 200);
    gone(&admin, &home, "the home volume to go").await;

    // Nothing of ours is left.
    dev::eventually("everything to go", Duration::from_secs(60), || async {
        let (servers, volumes, fips) = admin.inventory().await;
        (servers.is_empty() && volumes.is_empty() && fips.is_empty()).then_some(())
    })
    .await;
}
