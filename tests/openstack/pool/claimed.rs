//! What follows a claim: a VM that never asks for its job is given up for
//! a cold boot; the owner's home volume is attached to the claimed server
//! and waited for until in use; a floating IP only in `floating_ip` mode.

use super::{LIMIT, alices_vm, is_pool_create, spawn, wait_for_vm};
use crate::fake_openstack::POOL;
use axum::http::Method;
use stackbinder::cloud::META_VM;
use stackbinder::config::JupyterAccess;
use stackbinder::domain::{GithubId, LaunchPath, Login};

#[tokio::test]
async fn a_claimed_vm_that_never_asks_for_its_job_is_given_up_for_a_cold_boot() {
    // Arrange
    let app = spawn(|c| {
        c.pool.size = 1;
        c.pool.claim_timeout_seconds = 1;
    })
    .await;
    let ready = app.fill(1).await;
    let pool_server = ready[0].server_id.clone().unwrap();

    // Act: the launch claims it; the VM never asks for its assignment.
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    assert_eq!(claimed.launch_path, LaunchPath::Pool);
    let cold = wait_for_vm(&app, "a cold boot", |vm| {
        vm.launch_path == LaunchPath::Cold && vm.server_id.is_some()
    })
    .await;

    // Assert: the pool server deleted, a server booted for the same VM.
    assert_eq!(cold.id, claimed.id);
    assert_ne!(cold.server_id.as_deref(), Some(pool_server.as_str()));
    let deletes = app.fake.find_calls(Method::DELETE, "servers/");
    assert!(
        deletes
            .iter()
            .any(|c| c.path == format!("servers/{pool_server}"))
    );
    let own: Vec<_> = app
        .creates()
        .into_iter()
        .filter(|s| !is_pool_create(s))
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["metadata"][META_VM], cold.id.to_string());
    let events = app.store().recent_events(cold.id, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("did not ask for its job within 1 s")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn the_home_volume_is_attached_to_the_claimed_server_and_waited_for() {
    // Arrange: a first launch before the pool VM is ready (cold: it makes
    // the storage), deleted.
    let app = spawn(|c| {
        c.pool.size = 1;
        c.storage.home_volume_gb = 10;
        c.cloud.availability_zone = Some("nova".into());
    })
    .await;
    app.web.launch().await;
    assert_eq!(alices_vm(&app).await.launch_path, LaunchPath::Cold);
    app.web.wait_for("building", LIMIT).await;
    app.web.delete().await;
    app.web.wait_for("deleted", LIMIT).await;
    let ready = app.fill(1).await;
    let alice = GithubId::for_demo(&Login::parse("alice").unwrap());
    let home = app.store().home_volume(alice).await.unwrap().unwrap();
    app.fake.world().hold_attachments = true;

    // Act: the relaunch claims the ready pool VM.
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    assert_eq!(claimed.launch_path, LaunchPath::Pool);
    let server = ready[0].server_id.clone().unwrap();
    let attach_path = format!("servers/{server}/os-volume_attachments");
    app.wait_for_calls("the attachment", |fake| {
        !fake.find_calls(Method::POST, &attach_path).is_empty()
    })
    .await;
    let volume_path = format!("volumes/{}", home.volume_id);
    let looks = || app.fake.find_calls(Method::GET, &volume_path).len();
    let before = looks();
    app.wait_for_calls("looks while attaching", |_| looks() >= before + 3)
        .await;
    let attaching = alices_vm(&app).await;
    app.fake.world().hold_attachments = false;
    let settled = wait_for_vm(&app, "the claim settled", |vm| {
        vm.claim_settled_at.is_some()
    })
    .await;

    // Assert: Nova was asked once, for that volume on that server; the
    // claim waited until Cinder said in-use.
    let attaches = app.fake.find_calls(Method::POST, &attach_path);
    assert_eq!(attaches.len(), 1);
    let body = attaches[0].body.clone().unwrap();
    assert_eq!(body["volumeAttachment"]["volumeId"], home.volume_id);
    assert!(
        attaching.claim_settled_at.is_none(),
        "settled while attaching"
    );
    assert_eq!(settled.id, claimed.id);
    let volume = &app.fake.world().volumes[&home.volume_id];
    assert_eq!(volume.status, "in-use");
    assert_eq!(volume.server_id.as_deref(), Some(server.as_str()));
}

#[tokio::test]
async fn a_claim_gets_a_floating_ip_in_floating_ip_mode_and_none_behind_the_proxy() {
    for mode in [JupyterAccess::FloatingIp, JupyterAccess::Proxy] {
        // Arrange
        let app = spawn(|c| {
            c.pool.size = 1;
            c.cloud.jupyter_access = mode;
            c.cloud.floating_ip_pool = Some(POOL.into());
        })
        .await;
        let ready = app.fill(1).await;
        let before = app.fake.find_calls(Method::POST, "floatingips").len()
            + app.fake.find_calls(Method::PUT, "floatingips").len();

        // Act
        app.web.launch().await;
        let vm = wait_for_vm(&app, "the claim settled", |vm| {
            vm.claim_settled_at.is_some()
        })
        .await;

        // Assert
        let fip_calls = app.fake.find_calls(Method::POST, "floatingips").len()
            + app.fake.find_calls(Method::PUT, "floatingips").len();
        let port = app.fake.world().servers[ready[0].server_id.as_deref().unwrap()]
            .port_id
            .clone();
        let attached = app
            .fake
            .fips()
            .into_iter()
            .filter(|f| f.port_id.as_deref() == Some(port.as_str()))
            .count();
        assert_eq!(vm.launch_path, LaunchPath::Pool);
        match mode {
            JupyterAccess::FloatingIp => {
                assert_eq!(attached, 1, "one floating IP on the claimed server");
                assert!(vm.floating_ip.is_some());
            }
            JupyterAccess::Proxy => {
                assert_eq!((attached, fip_calls - before), (0, 0));
                assert!(vm.floating_ip.is_none());
            }
        }
    }
}
