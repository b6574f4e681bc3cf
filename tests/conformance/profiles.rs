//! A launch profile's flavor and volume size reach the real Nova and
//! Cinder: the confirmation page offers it with the room the real quotas
//! leave, and the server and its boot volume are made of it.

use crate::dev::{self, Rest};
use crate::web::{App, REPO, csrf_from};
use serde_json::json;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_profiles_flavor_and_volume_size_reach_nova_and_cinder() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("dora", |c| {
        c.profiles = serde_json::from_value(json!([
            {"name": "small", "description": "the default", "flavor": dev::FLAVOR,
             "volume_size_gb": 1},
            {"name": "medium", "description": "two cores, a bigger disk",
             "flavor": "sb.medium", "volume_size_gb": 2},
        ]))
        .expect("valid profiles");
    })
    .await;

    // The page offers it with what the real quotas leave for its size.
    let page = app
        .get(&format!("/VM_start?giturl={REPO}&profile=medium"))
        .await;
    assert!(page.contains("value=\"medium\" checked"), "{page}");
    assert!(
        page.contains("of this size still fit") || page.contains("of this size still fits"),
        "{page}"
    );
    let csrf = csrf_from(&page);
    let status = app
        .post(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("profile", "medium")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let building = app.wait_for("building", BOOT).await;
    assert!(building["error"].is_null(), "{building:#}");

    // Nova: the profile's flavor. Cinder: a boot volume of its size.
    let vm_id = building["id"].as_str().unwrap();
    let servers = admin.get("compute", "/servers/detail").await;
    let server = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["stackbinder_vm"] == vm_id)
        .unwrap_or_else(|| panic!("no server with stackbinder_vm={vm_id}: {servers:#}"))
        .clone();
    assert_eq!(server["flavor"]["original_name"], "sb.medium", "{server:#}");
    let attached = server["os-extended-volumes:volumes_attached"]
        .as_array()
        .unwrap();
    assert_eq!(attached.len(), 1, "{server:#}");
    let volume_id = attached[0]["id"].as_str().unwrap().to_owned();
    let volume = admin
        .get("block-storage", &format!("/volumes/{volume_id}"))
        .await["volume"]
        .clone();
    assert_eq!(volume["size"], 2, "{volume:#}");

    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    dev::eventually("the volume to go", Duration::from_secs(60), || async {
        (!admin
            .exists("block-storage", &format!("/volumes/{volume_id}"))
            .await)
            .then_some(())
    })
    .await;
}
