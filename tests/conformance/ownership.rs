//! Nothing lost, nothing foreign touched (issue #10, items 1 to 4) on the
//! real services: every page of real Nova's, Cinder's and Neutron's lists;
//! two stackbinders on one project; an operator's floating IP and volume;
//! Neutron's conditional update that makes attaching race-free.

use crate::dev::{self, Rest, eventually};
use crate::web::App;
use reqwest::Method;
use serde_json::{Value, json};
use stackbinder::cloud::openstack::OpenStackCloud;
use stackbinder::cloud::{
    Cloud, InstallationId, META_INSTANCE, META_LOGIN, META_VM, ServerSpec, ServerStatus,
};
use stackbinder::config::Config;
use stackbinder::domain::VmId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(180);

/// The reconciler at its harshest: every step, no grace.
fn harsh(config: &mut Config) {
    config.provision.reconcile_interval_seconds = 0;
    config.provision.orphan_grace_minutes = 0;
}

/// What the provisioner would send for a VM of `owner`.
fn spec_of(owner: &InstallationId, login: &str) -> ServerSpec {
    let c = dev::cloud_config();
    ServerSpec {
        name: format!("sbconf-{login}"),
        image: c.image.clone(),
        flavor: c.flavor.clone(),
        volume_size_gb: 1,
        delete_volume_on_termination: true,
        key_name: c.key_name.clone(),
        security_groups: c.security_groups.clone(),
        network: c.network.clone(),
        user_data: "#cloud-config\n".into(),
        metadata: BTreeMap::from([
            (META_VM.to_owned(), VmId::new().to_string()),
            (META_LOGIN.to_owned(), login.to_owned()),
            (META_INSTANCE.to_owned(), owner.to_string()),
        ]),
        home_volume: None,
        availability_zone: None,
    }
}

async fn wait_active(cloud: &OpenStackCloud, id: &str) {
    eventually("the server to be ACTIVE", BOOT, || async {
        let s = cloud.get_server(id).await.unwrap()?;
        assert_ne!(s.status, ServerStatus::Error, "{s:?}");
        (s.status == ServerStatus::Active).then_some(())
    })
    .await;
}

/// The real server a VM of the view runs on.
async fn server_of(rest: &Rest, view: &Value) -> Value {
    let vm = view["id"].as_str().unwrap();
    let servers = rest.get("compute", "/servers/detail").await;
    servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["stackbinder_vm"] == vm)
        .unwrap_or_else(|| panic!("no server for VM {vm}"))
        .clone()
}

async fn fips(rest: &Rest) -> Vec<Value> {
    rest.get(
        "network",
        &format!("/v2.0/floatingips?project_id={}", rest.project_id),
    )
    .await["floatingips"]
        .as_array()
        .unwrap()
        .clone()
}

/// A floating IP of the pool allocated by the admin, attached to nothing.
async fn allocate_fip(rest: &Rest, description: &str) -> Value {
    let networks = rest
        .get("network", &format!("/v2.0/networks?name={}", dev::POOL))
        .await;
    let pool = networks["networks"][0]["id"].clone();
    let (status, body) = rest
        .send(
            Method::POST,
            "network",
            "/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": pool,
                "project_id": rest.project_id, "description": description}})),
        )
        .await;
    assert_eq!(status, 201, "allocate: {body}");
    body["floatingip"].clone()
}

/// An operator's volume of 1 GB: its id.
async fn create_volume(rest: &Rest) -> String {
    let (status, body) = rest
        .send(
            Method::POST,
            "block-storage",
            "/volumes",
            Some(json!({"volume": {"size": 1, "name": "operator-data"}})),
        )
        .await;
    assert_eq!(status, 202, "volume create: {body}");
    body["volume"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up"]
async fn every_page_of_real_nova_cinder_and_neutron_is_read_and_a_live_vm_is_kept() {
    // Arrange: our VM first, then three servers of another installation
    // (newer, so listed before ours), and stackbinder paging at 2.
    let _one_at_a_time = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = dev::config(dir.path());
    harsh(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(dev::backend(&config.cloud).with_page_size(2));
    let app = App::start(config.clone(), cloud, "alice", Duration::from_secs(30)).await;
    app.launch().await;
    let view = app.wait_for("building", BOOT).await;
    let other = InstallationId::generate();
    let theirs = dev::backend(&config.cloud).with_page_size(2);
    let mut foreign = Vec::new();
    for i in 0..3 {
        let id = theirs
            .create_server(&spec_of(&other, &format!("other{i}")))
            .await
            .unwrap();
        wait_active(&theirs, &id).await;
        let boot = theirs.get_server(&id).await.unwrap().unwrap().volume_ids[0].clone();
        theirs.tag_volume(&boot, &other, "other-vm").await.unwrap();
        theirs.attach_floating_ip(&id, &other).await.unwrap();
        foreign.push(id);
    }

    // Act: ours reconciles, and theirs lists what it owns, page by page.
    app.wait_for_reconcile_passes(3, BOOT).await;
    let owned = theirs.list_owned(&other).await.unwrap();

    // Assert: every page of each real service was read...
    let mut listed: Vec<String> = owned.servers.iter().map(|s| s.id.clone()).collect();
    listed.sort();
    foreign.sort();
    assert_eq!(listed, foreign, "all three servers, two pages of Nova");
    assert_eq!(
        owned.volume_ids.len(),
        3,
        "three volumes, over Cinder's pages"
    );
    assert_eq!(
        owned.floating_ips.len(),
        3,
        "three addresses, over Neutron's pages"
    );
    // ...and the live VM and the other installation's servers are intact.
    assert_eq!(app.view().await["state"], "building");
    let server = server_of(&admin, &view).await;
    assert_eq!(server["status"], "ACTIVE");
    for id in &foreign {
        assert!(admin.exists("compute", &format!("/servers/{id}")).await);
    }

    app.delete().await;
    app.wait_for("deleted", BOOT).await;
    admin.purge().await;
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up"]
async fn two_installations_and_an_operator_share_a_real_project_without_touching_each_other() {
    // Arrange: the operator's free floating IP and spare volume, then two
    // stackbinders with their own databases, each with a VM.
    let _one_at_a_time = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let operator_fip = allocate_fip(&admin, "the bastion's spare").await;
    let operator_volume = create_volume(&admin).await;
    let a = App::spawn("alice", harsh).await;
    let b = App::spawn("bob", harsh).await;
    a.launch().await;
    b.launch().await;
    let view_a = a.wait_for("building", BOOT).await;
    let view_b = b.wait_for("building", BOOT).await;

    // Act
    a.wait_for_reconcile_passes(3, BOOT).await;
    b.wait_for_reconcile_passes(3, BOOT).await;

    // Assert: everything is still there, each tagged with its own id.
    assert_eq!(a.view().await["state"], "building");
    assert_eq!(b.view().await["state"], "building");
    let (servers, volumes, fip_ids) = admin.inventory().await;
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(volumes.len(), 3, "two boot volumes and the operator's");
    assert_eq!(fip_ids.len(), 3, "one each and the operator's");
    let (id_a, id_b) = (a.installation().await, b.installation().await);
    assert_ne!(id_a, id_b);
    let all_fips = fips(&admin).await;
    for (view, id) in [(&view_a, &id_a), (&view_b, &id_b)] {
        let server = server_of(&admin, view).await;
        assert_eq!(server["metadata"][META_INSTANCE], id.as_str());
        let boot = server["os-extended-volumes:volumes_attached"][0]["id"]
            .as_str()
            .unwrap();
        let volume = admin
            .get("block-storage", &format!("/volumes/{boot}"))
            .await["volume"]
            .clone();
        assert_eq!(volume["metadata"][META_INSTANCE], id.as_str(), "{volume:#}");
        assert_eq!(volume["metadata"][META_VM], view["id"]);
        let address = view["address"].as_str().unwrap();
        let fip = all_fips
            .iter()
            .find(|f| f["floating_ip_address"] == address)
            .expect("the VM's floating IP");
        assert_eq!(fip["description"], format!("stackbinder {id}"));
    }
    let spare = all_fips
        .iter()
        .find(|f| f["id"] == operator_fip["id"])
        .expect("the operator's floating IP");
    assert!(spare["port_id"].is_null(), "not taken: {spare:#}");
    assert_eq!(spare["description"], "the bastion's spare");
    assert_eq!(spare["revision_number"], operator_fip["revision_number"]);

    // A delete by A takes A's only.
    a.delete().await;
    a.wait_for("deleted", BOOT).await;
    b.wait_for_reconcile_passes(2, BOOT).await;
    assert_eq!(b.view().await["state"], "building");
    let (servers, volumes, fip_ids) = admin.inventory().await;
    assert_eq!(servers.len(), 1);
    assert!(volumes.contains(&operator_volume));
    assert_eq!(volumes.len(), 2);
    assert_eq!(fip_ids.len(), 2);
    b.delete().await;
    b.wait_for("deleted", BOOT).await;
    assert!(
        admin
            .exists("block-storage", &format!("/volumes/{operator_volume}"))
            .await
    );
    let (_, _, fip_ids) = admin.inventory().await;
    assert_eq!(fip_ids, [operator_fip["id"].as_str().unwrap()]);
    admin.purge().await;
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up"]
async fn real_neutron_refuses_a_stale_attach_and_two_vms_never_share_an_address() {
    // Arrange: two ACTIVE servers of one installation, one free floating
    // IP of its own.
    let _one_at_a_time = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let owner = InstallationId::generate();
    let cloud = dev::backend(&dev::cloud_config());
    let mut servers = Vec::new();
    for login in ["alice", "bob"] {
        let id = cloud.create_server(&spec_of(&owner, login)).await.unwrap();
        servers.push(id);
    }
    for id in &servers {
        wait_active(&cloud, id).await;
    }
    let free = allocate_fip(&admin, &format!("stackbinder {owner}")).await;

    // The mechanism: a PUT conditional on an old revision is refused.
    let fid = free["id"].as_str().unwrap();
    let stale = free["revision_number"].as_u64().unwrap();
    let (status, _) = admin
        .send(
            Method::PUT,
            "network",
            &format!("/v2.0/floatingips/{fid}"),
            Some(json!({"floatingip": {"description": format!("stackbinder {owner}")}})),
        )
        .await;
    assert_eq!(status, 200);
    let (refused, body) = admin
        .send_with(
            Method::PUT,
            "network",
            &format!("/v2.0/floatingips/{fid}"),
            Some(json!({"floatingip": {"port_id": null}})),
            &[("If-Match", format!("revision_number={stale}"))],
        )
        .await;
    assert_eq!(refused, 412, "Neutron honours If-Match: {body}");

    // Act: both attach at once.
    let (one, two) = tokio::join!(
        cloud.attach_floating_ip(&servers[0], &owner),
        cloud.attach_floating_ip(&servers[1], &owner),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    // Assert: two addresses, each on its own server's port.
    assert_ne!(one.address, two.address);
    for (fip, server) in [(&one, &servers[0]), (&two, &servers[1])] {
        let ports = admin
            .get("network", &format!("/v2.0/ports?device_id={server}"))
            .await;
        let port = ports["ports"][0]["id"].clone();
        let shown = admin
            .get("network", &format!("/v2.0/floatingips/{}", fip.id))
            .await;
        assert_eq!(shown["floatingip"]["port_id"], port);
    }
    assert!([&one.id, &two.id].iter().any(|id| id.as_str() == fid));
    admin.purge().await;
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up"]
async fn deleting_a_vm_on_the_real_cloud_keeps_a_volume_the_operator_attached() {
    // Arrange: a VM, and an operator's volume attached to its server.
    let _one_at_a_time = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("alice", |_| {}).await;
    app.launch().await;
    let view = app.wait_for("building", BOOT).await;
    let server = server_of(&admin, &view).await;
    let sid = server["id"].as_str().unwrap().to_owned();
    let boot = server["os-extended-volumes:volumes_attached"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let volume = create_volume(&admin).await;
    eventually("the operator's volume to be available", BOOT, || async {
        let v = admin
            .get("block-storage", &format!("/volumes/{volume}"))
            .await;
        (v["volume"]["status"] == "available").then_some(())
    })
    .await;
    let (status, body) = admin
        .send(
            Method::POST,
            "compute",
            &format!("/servers/{sid}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": volume}})),
        )
        .await;
    assert_eq!(status, 200, "attach: {body}");
    eventually("the operator's volume to be attached", BOOT, || async {
        let v = admin
            .get("block-storage", &format!("/volumes/{volume}"))
            .await;
        (v["volume"]["status"] == "in-use").then_some(())
    })
    .await;

    // Act
    app.delete().await;
    app.wait_for("deleted", BOOT).await;

    // Assert: the boot volume is gone, the operator's is kept (detached).
    assert!(
        !admin
            .exists("block-storage", &format!("/volumes/{boot}"))
            .await
    );
    eventually("the operator's volume to be detached", BOOT, || async {
        let v = admin
            .get("block-storage", &format!("/volumes/{volume}"))
            .await;
        (v["volume"]["status"] == "available").then_some(())
    })
    .await;
    admin.purge().await;
}
