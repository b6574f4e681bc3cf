//! A launch and a delete through the backend: what Nova, Cinder and
//! Neutron receive, how many calls it takes, and that nothing is left.

use crate::fake_openstack::KEY;
use crate::helpers::*;
use axum::http::Method;
use stackbinder::cloud::{Cloud, META_VM, ServerStatus};

#[tokio::test]
async fn a_launch_sends_nova_what_the_old_tool_did() {
    // Arrange
    let env = setup().await;
    let spec = spec(&env.config, "alice");

    // Act
    let id = env
        .cloud
        .create_server(&spec)
        .await
        .expect("the server is created");

    // Assert
    let creates = env.fake.find_calls(Method::POST, "servers");
    assert_eq!(creates.len(), 1);
    let call = &creates[0];
    assert_eq!(call.headers["openstack-api-version"], "compute 2.69");
    let s = &call.body.as_ref().unwrap()["server"];
    assert_eq!(s["name"], "alice");
    assert_eq!(s["flavorRef"], "4", "the flavor name is sent as its id");
    assert_eq!(
        s["imageRef"], "",
        "boot from volume: the image is in the BDM"
    );
    let (image_id, private_id, sg_ids) = {
        let world = env.fake.world();
        (
            world.images[0]["id"].clone(),
            world.networks[0]["id"].clone(),
            world.sgs_named(&["ssh-whitelist", "Open-top"]),
        )
    };
    let bdm = &s["block_device_mapping_v2"];
    assert_eq!(bdm.as_array().unwrap().len(), 1);
    assert_eq!(bdm[0]["boot_index"], 0);
    assert_eq!(bdm[0]["uuid"], image_id);
    assert_eq!(bdm[0]["source_type"], "image");
    assert_eq!(bdm[0]["destination_type"], "volume");
    assert_eq!(bdm[0]["volume_size"], 150);
    assert_eq!(bdm[0]["delete_on_termination"], true);
    assert_eq!(s["networks"][0]["uuid"], private_id);
    assert_eq!(s["key_name"], KEY);
    let groups: Vec<serde_json::Value> = s["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(groups, sg_ids, "ssh-whitelist and Open-top, by id");
    assert_eq!(s["metadata"][META_VM], spec.metadata[META_VM].as_str());
    assert_eq!(s["metadata"]["stackbinder_login"], "alice");
    assert_eq!(s["metadata"]["stackbinder_owner"], "583231");
    let user_data = env.fake.user_data(0);
    assert!(user_data.starts_with("#cloud-config\n"), "{user_data}");
    assert_eq!(user_data, spec.user_data);
    assert!(stackbinder::cloud_init::parse_boot_data(&user_data).is_some());
    assert_eq!(env.fake.server_count(), 1);
    let server = env.cloud.get_server(&id).await.unwrap().unwrap();
    assert_eq!(server.name, "alice");
}

#[tokio::test]
async fn names_are_resolved_once_and_a_later_launch_costs_only_quota_and_create() {
    // Arrange
    let env = setup().await;

    // Act: the first launch resolves names; the second reuses them.
    env.cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    let before = env.fake.calls().len();
    env.cloud
        .create_server(&spec(&env.config, "bob"))
        .await
        .unwrap();
    let second = env.fake.count_by_service(before);

    // Assert
    assert_eq!(env.fake.world().auths.len(), 1, "one token for everything");
    assert_eq!(
        second.into_iter().collect::<Vec<_>>(),
        [("compute", 2), ("network", 1), ("volume", 1)],
        "Nova limits + create, Cinder limits, Neutron quota"
    );
}

#[tokio::test]
async fn launch_attach_and_delete_leave_nothing_behind() {
    // Arrange
    let env = setup().await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();

    // Act: what the driver does, step by step.
    let mut server = env.cloud.get_server(&id).await.unwrap().unwrap();
    while server.status == ServerStatus::Build {
        server = env.cloud.get_server(&id).await.unwrap().unwrap();
    }
    assert_eq!(server.status, ServerStatus::Active);
    assert_eq!(server.volume_ids.len(), 1);
    let fip = env.cloud.attach_floating_ip(&id, &owner()).await.unwrap();
    let again = env.cloud.attach_floating_ip(&id, &owner()).await.unwrap();
    let port_lookup = &env.fake.find_calls(Method::GET, "ports")[0];
    assert_eq!(
        port_lookup.query["device_id"], id,
        "the server's port, found by device"
    );
    assert_eq!(fip, again, "attaching twice reuses the attached address");
    let console = env.cloud.console_output(&id, 2).await.unwrap();
    assert!(console.ends_with("LAST LINE"), "{console}");
    env.cloud
        .tag_volume(&server.volume_ids[0], &owner(), "a-vm")
        .await
        .unwrap();
    let owned = env.cloud.list_owned(&owner()).await.unwrap();
    assert_eq!(owned.servers.len(), 1);
    assert_eq!(owned.volume_ids, server.volume_ids);
    assert_eq!(owned.floating_ips, std::slice::from_ref(&fip));

    let before = env.fake.calls().len();
    env.cloud.delete_server(&id).await.unwrap();
    while env.cloud.get_server(&id).await.unwrap().is_some() {}
    for v in &server.volume_ids {
        env.cloud.delete_volume(v).await.unwrap();
    }
    env.cloud.release_floating_ip(&fip.id).await.unwrap();
    let delete_calls = env.fake.count_by_service(before);

    // Assert
    assert_eq!(env.fake.server_count(), 0);
    assert_eq!(env.fake.volume_count(), 0);
    assert!(
        env.fake.fips().is_empty(),
        "the floating IP went back to the pool"
    );
    let owned = env.cloud.list_owned(&owner()).await.unwrap();
    assert!(
        owned.servers.is_empty() && owned.volume_ids.is_empty() && owned.floating_ips.is_empty()
    );
    assert_eq!(
        delete_calls.into_iter().collect::<Vec<_>>(),
        [("compute", 3), ("network", 1), ("volume", 1)],
        "delete, two polls; volume delete; floating IP release"
    );
}

#[tokio::test]
async fn a_kept_boot_volume_is_deleted_once_the_server_is_gone() {
    // Arrange: delete_on_termination false, as some clouds require.
    let env = setup_with(|c| c.delete_volume_on_termination = false, false).await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    let body = env.fake.find_calls(Method::POST, "servers")[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(
        body["server"]["block_device_mapping_v2"][0]["delete_on_termination"],
        false
    );
    let server = env.cloud.get_server(&id).await.unwrap().unwrap();
    let volume = server.volume_ids[0].clone();

    // Act / Assert: while attached, Cinder says no; then it goes.
    assert_eq!(
        env.cloud.delete_volume(&volume).await,
        Err(stackbinder::cloud::CloudError::VolumeBusy)
    );
    env.cloud.delete_server(&id).await.unwrap();
    while env.cloud.get_server(&id).await.unwrap().is_some() {}
    assert_eq!(env.fake.volume_count(), 1, "Nova kept the volume");
    env.cloud.delete_volume(&volume).await.unwrap();
    assert_eq!(env.fake.volume_count(), 0);
    env.cloud
        .delete_volume(&volume)
        .await
        .expect("a volume already gone is fine");
}

#[tokio::test]
async fn a_free_floating_ip_of_the_project_is_reused_before_allocating() {
    // Arrange: a VM whose address was kept (release_floating_ip = false).
    let env = setup().await;
    let first = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    while env.cloud.get_server(&first).await.unwrap().unwrap().status != ServerStatus::Active {}
    let kept = env
        .cloud
        .attach_floating_ip(&first, &owner())
        .await
        .unwrap();
    env.cloud.delete_server(&first).await.unwrap();
    while env.cloud.get_server(&first).await.unwrap().is_some() {}

    // Act
    let second = env
        .cloud
        .create_server(&spec(&env.config, "bob"))
        .await
        .unwrap();
    while env.cloud.get_server(&second).await.unwrap().unwrap().status != ServerStatus::Active {}
    let reused = env
        .cloud
        .attach_floating_ip(&second, &owner())
        .await
        .unwrap();

    // Assert
    assert_eq!(reused, kept);
    assert_eq!(env.fake.fips().len(), 1);
    assert_eq!(env.fake.find_calls(Method::POST, "floatingips").len(), 1);
}
