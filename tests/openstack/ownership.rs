//! Nothing lost, nothing foreign touched (issue #10, items 1 to 6): the
//! whole application on the fake OpenStack, with another installation's
//! and an operator's resources in the same project, lists that page or
//! miss a server, lost create answers, a hand-attached volume and
//! floating IPs raced for.

use crate::fake_openstack::FakeOpenStack;
use crate::helpers::*;
use axum::http::Method;
use serde_json::Value;
use stackbinder::cloud::{
    Cloud, InstallationId, META_BUILD_UNTIL, META_IMAGE_BUILD, META_INSTANCE, META_VM, ServerStatus,
};
use stackbinder::config::Config;
use std::collections::BTreeMap;
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::app::web_app::{REPO, WebApp, assert_is_redirect_to};

const WAIT: Duration = Duration::from_secs(20);

/// stackbinder on `env`'s fake, with a reconciler that runs at every step
/// and deletes at once what it finds unexplained (grace 0): the harshest
/// setting, so anything it wrongly takes for an orphan goes.
async fn spawn(env: &Env, login: &str, configure: impl FnOnce(&mut Config)) -> WebApp {
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.provision.reconcile_interval_seconds = 0;
    config.provision.orphan_grace_minutes = 0;
    config.cloud = env.config.clone();
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    WebApp::start(config, cloud, login, Duration::from_secs(10)).await
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait, with a bound, for Nova to show the server `id` ACTIVE.
async fn until_active(env: &Env, id: &str) {
    let deadline = Instant::now() + WAIT;
    while env.cloud.get_server(id).await.unwrap().unwrap().status != ServerStatus::Active {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {id} to be ACTIVE"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The fake's server that the VM `view` runs on.
fn server_of(fake: &FakeOpenStack, view: &Value) -> String {
    let vm = view["id"].as_str().unwrap();
    fake.world()
        .servers
        .values()
        .find(|s| s.metadata.get(META_VM).map(String::as_str) == Some(vm))
        .unwrap_or_else(|| panic!("no server for VM {vm}"))
        .id
        .clone()
}

fn another_installation() -> BTreeMap<String, String> {
    BTreeMap::from([
        (META_VM.into(), stackbinder::domain::VmId::new().to_string()),
        (META_INSTANCE.into(), InstallationId::generate().to_string()),
    ])
}

#[tokio::test]
async fn reconciler_follows_every_page_of_servers_and_keeps_a_live_vm() {
    // Arrange: Nova pages at 2; our server is the oldest, so it is on the
    // third page (Nova lists the newest first).
    let env = setup().await;
    env.fake.world().page_size = 2;
    let app = spawn(&env, "alice", |_| {}).await;
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;
    let ours = server_of(&env.fake, &view);
    for i in 0..4 {
        env.fake.add_server(
            &format!("other-{i}"),
            another_installation(),
            BTreeMap::new(),
        );
    }

    let looked = env
        .fake
        .find_calls(Method::GET, &format!("servers/{ours}"))
        .len();

    // Act
    app.wait_for_reconcile_passes(3, WAIT).await;

    // Assert: the VM lives, its server was found in the lists (no look
    // behind them needed), and every page was read.
    assert_eq!(app.view().await["state"], "building");
    assert!(env.fake.world().servers.contains_key(&ours));
    assert_eq!(env.fake.server_count(), 5, "nothing deleted");
    assert!(env.fake.find_calls(Method::DELETE, "servers").is_empty());
    let lists = env.fake.find_calls(Method::GET, "servers/detail");
    assert!(
        lists.iter().any(|c| c.query.contains_key("marker")),
        "the next pages were asked for"
    );
    assert!(
        lists
            .iter()
            .all(|c| c.headers["openstack-api-version"] == "compute 2.69"),
        "a microversion that lists down-cell servers"
    );
    assert_eq!(
        env.fake
            .find_calls(Method::GET, &format!("servers/{ours}"))
            .len(),
        looked,
        "listed, so not looked up"
    );
}

#[tokio::test]
async fn reconciler_keeps_a_vm_whose_server_one_listing_missed() {
    // Arrange
    let env = setup().await;
    let app = spawn(&env, "alice", |_| {}).await;
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;
    let ours = server_of(&env.fake, &view);

    // Act: the next three lists leave the server out (a page short, a
    // cell down); Nova still shows it when asked for it.
    env.fake.world().omit_from_lists.insert(ours.clone(), 3);
    app.wait_for_reconcile_passes(4, WAIT).await;

    // Assert
    assert_eq!(app.view().await["state"], "building");
    assert!(env.fake.world().servers.contains_key(&ours));
    assert!(env.fake.find_calls(Method::DELETE, "servers").is_empty());
    assert!(
        !env.fake
            .find_calls(Method::GET, &format!("servers/{ours}"))
            .is_empty(),
        "looked up behind the list"
    );
}

#[tokio::test]
async fn reconciler_marks_a_vm_gone_after_its_server_answers_404_twice() {
    // Passes 8 s apart, so the state between two can be seen: looking
    // takes milliseconds, and even a machine stalled for seconds does not
    // let the next pass in before the test has looked.
    let env = setup().await;
    let app = spawn(&env, "alice", |c| {
        c.provision.reconcile_interval_seconds = 8
    })
    .await;
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;
    let ours = server_of(&env.fake, &view);
    let look = format!("servers/{ours}");
    let looked = env.fake.find_calls(Method::GET, &look).len();

    // Someone deletes the server behind stackbinder's back.
    env.fake.remove_server(&ours);

    // One 404 is not enough.
    until("a look that answers 404", || {
        env.fake.find_calls(Method::GET, &look).len() > looked
    })
    .await;
    assert_eq!(app.view().await["state"], "building", "after one 404");
    // The next pass's 404 is.
    app.wait_for("deleted", WAIT).await;
}

#[tokio::test]
async fn two_installations_on_one_project_leave_each_others_resources_alone() {
    // Arrange: two stackbinders (two databases) on one project, and an
    // operator's server with its volume, a free floating IP of the
    // operator's and one described as the old versions did.
    let env = setup().await;
    let (operator_server, operator_volume) =
        env.fake
            .add_server("jumphost", BTreeMap::new(), BTreeMap::new());
    let operator_fip = env.fake.add_fip("");
    let legacy_fip = env.fake.add_fip("stackbinder");
    let a = spawn(&env, "alice", |_| {}).await;
    let b = spawn(&env, "bob", |_| {}).await;
    a.launch().await;
    b.launch().await;
    let view_a = a.wait_for("building", WAIT).await;
    let view_b = b.wait_for("building", WAIT).await;

    // Act: each reconciles, deleting at once whatever it thinks is its own.
    a.wait_for_reconcile_passes(3, WAIT).await;
    b.wait_for_reconcile_passes(3, WAIT).await;

    // Assert: nothing was deleted or released, by either.
    assert_eq!(a.view().await["state"], "building");
    assert_eq!(b.view().await["state"], "building");
    assert!(env.fake.find_calls(Method::DELETE, "servers").is_empty());
    assert!(env.fake.find_calls(Method::DELETE, "volumes").is_empty());
    assert!(
        env.fake
            .find_calls(Method::DELETE, "floatingips")
            .is_empty()
    );
    assert_eq!(env.fake.server_count(), 3);
    assert_eq!(env.fake.volume_count(), 3);
    assert_eq!(env.fake.fips().len(), 4);
    // Each one's server, boot volume and floating IP carry its own id.
    let (id_a, id_b) = (a.installation().await, b.installation().await);
    assert_ne!(id_a, id_b);
    {
        let w = env.fake.world();
        for (view, id) in [(&view_a, &id_a), (&view_b, &id_b)] {
            let vm = view["id"].as_str().unwrap();
            let server = w
                .servers
                .values()
                .find(|s| s.metadata.get(META_VM).map(String::as_str) == Some(vm))
                .unwrap();
            assert_eq!(server.metadata[META_INSTANCE], id.as_str());
            let volume = &w.volumes[server.volume_id.as_ref().unwrap()];
            assert_eq!(volume.metadata[META_INSTANCE], id.as_str());
            assert_eq!(volume.metadata[META_VM], vm);
            let fip = w
                .fips
                .values()
                .find(|f| f.port_id.as_deref() == Some(&server.port_id))
                .expect("a floating IP on the server");
            assert_eq!(fip.description, format!("stackbinder {id}"));
        }
        assert!(w.servers.contains_key(&operator_server));
        assert!(w.volumes[&operator_volume].metadata.is_empty());
        for fip in [&operator_fip, &legacy_fip] {
            assert!(w.fips[fip].port_id.is_none(), "not taken");
        }
        assert_eq!(w.fips[&operator_fip].description, "", "not relabelled");
    }

    // And a delete by A takes only A's.
    a.delete().await;
    a.wait_for("deleted", WAIT).await;
    b.wait_for_reconcile_passes(2, WAIT).await;
    assert_eq!(b.view().await["state"], "building");
    assert_eq!(env.fake.server_count(), 2);
    assert_eq!(env.fake.volume_count(), 2);
    assert_eq!(env.fake.fips().len(), 3);
}

#[tokio::test]
async fn an_operators_free_floating_ip_is_never_taken_or_released() {
    // Arrange: the only free floating IP of the project is the operator's.
    let env = setup().await;
    let operator_fip = env.fake.add_fip("the bastion's spare");
    let app = spawn(&env, "alice", |_| {}).await;

    // Act
    app.launch().await;
    app.wait_for("building", WAIT).await;
    app.delete().await;
    app.wait_for("deleted", WAIT).await;

    // Assert: stackbinder allocated (and released) its own.
    assert_eq!(env.fake.find_calls(Method::POST, "floatingips").len(), 1);
    assert_eq!(env.fake.find_calls(Method::DELETE, "floatingips").len(), 1);
    let w = env.fake.world();
    assert_eq!(w.fips.len(), 1);
    let fip = &w.fips[&operator_fip];
    assert!(fip.port_id.is_none());
    assert_eq!(fip.description, "the bastion's spare");
    assert_eq!(fip.revision, 1, "never changed");
}

#[tokio::test]
async fn two_vms_attaching_at_once_never_share_a_floating_ip() {
    // Arrange: two ACTIVE servers, one free floating IP of ours, and both
    // attaches see it free (their lists answer together).
    let env = setup().await;
    let ours = owner();
    let free = env.fake.add_fip(&format!("stackbinder {ours}"));
    let mut servers = Vec::new();
    for login in ["alice", "bob"] {
        let id = env
            .cloud
            .create_server(&spec(&env.config, login))
            .await
            .unwrap();
        until_active(&env, &id).await;
        servers.push(id);
    }
    env.fake.hold_fip_lists_together(2);

    // Act
    let (one, two) = tokio::join!(
        env.cloud.attach_floating_ip(&servers[0], &ours),
        env.cloud.attach_floating_ip(&servers[1], &ours),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    // Assert: two addresses, each on its own server's port; the free one
    // went to exactly one of them, the other allocated a new one.
    assert_ne!(one.address, two.address);
    let w = env.fake.world();
    for (fip, server) in [(&one, &servers[0]), (&two, &servers[1])] {
        assert_eq!(
            w.fips[&fip.id].port_id.as_deref(),
            Some(w.servers[server].port_id.as_str())
        );
    }
    assert!([&one.id, &two.id].contains(&&free));
    drop(w);
    let puts = env.fake.find_calls(Method::PUT, "floatingips");
    assert!(
        puts.iter()
            .all(|c| c.headers["if-match"] == "revision_number=1"),
        "attaching is conditional on the revision seen"
    );
    assert_eq!(env.fake.find_calls(Method::POST, "floatingips").len(), 1);
}

#[tokio::test]
async fn deleting_a_vm_keeps_a_volume_the_operator_attached_by_hand() {
    // Arrange
    let env = setup().await;
    let app = spawn(&env, "alice", |_| {}).await;
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;
    let server = server_of(&env.fake, &view);
    let boot = env.fake.world().servers[&server].volume_id.clone().unwrap();
    let operators = env.fake.attach_operator_volume(&server);

    // Act
    app.delete().await;
    app.wait_for("deleted", WAIT).await;

    // Assert: the boot volume went with the VM; the operator's stays.
    let w = env.fake.world();
    assert!(!w.volumes.contains_key(&boot));
    let kept = w.volumes.get(&operators).expect("the operator's volume");
    assert_eq!(kept.status, "available");
    drop(w);
    let deleted: Vec<String> = env
        .fake
        .find_calls(Method::DELETE, "volumes/")
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(deleted, [format!("volumes/{boot}")]);
}

#[tokio::test]
async fn a_failed_launch_gives_back_its_server_volume_and_floating_ip_at_once() {
    // Arrange: the VM never reports progress, so the clone phase times out.
    let env = setup().await;
    let app = spawn(&env, "alice", |c| {
        c.launch.clone_timeout_seconds = NonZero::new(1).unwrap();
        c.provision.reconcile_interval_seconds = 3600;
    })
    .await;
    app.launch().await;
    app.wait_for("building", WAIT).await;
    assert_eq!(env.fake.server_count(), 1);
    assert_eq!(env.fake.fips().len(), 1);

    // Act
    let failed = app.wait_for("failed", WAIT).await;
    until("the failed launch's resources to go", || {
        env.fake.server_count() == 0 && env.fake.volume_count() == 0 && env.fake.fips().is_empty()
    })
    .await;

    // Assert: the user keeps the record and the reason.
    let view = app.view().await;
    assert_eq!(view["state"], "failed");
    assert_eq!(view["error"], failed["error"]);
    assert!(
        view["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no progress from the VM"),
        "{view:#}"
    );
    // And deleting it later asks the cloud for nothing more.
    let before = env.fake.calls().len();
    app.delete().await;
    app.wait_for("deleted", WAIT).await;
    let after: Vec<_> = env.fake.calls()[before..]
        .iter()
        .filter(|c| c.method == Method::DELETE)
        .map(|c| c.path.clone())
        .collect();
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn a_lost_create_answer_does_not_make_a_second_server() {
    // Arrange: Nova makes the server but the answer is lost, and the next
    // two lists do not show it yet.
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.lose_create_answers = 1;
        w.hide_next_created = 2;
    }
    let app = spawn(&env, "alice", |c| {
        c.provision.reconcile_interval_seconds = 3600;
    })
    .await;

    // Act
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;

    // Assert
    let creates: Vec<_> = env
        .fake
        .find_calls(Method::POST, "servers")
        .into_iter()
        .filter(|c| c.path == "servers")
        .collect();
    assert_eq!(creates.len(), 1, "one POST /servers");
    assert_eq!(env.fake.server_count(), 1);
    assert_eq!(
        server_of(&env.fake, &view),
        server_of_recorded(&env.fake, &view)
    );
}

#[tokio::test]
async fn reconciler_deletes_the_second_server_a_lost_create_answer_left() {
    // Arrange: the server behind the lost answer stays unlisted for longer
    // than the driver looks, so a second one is made: 60 lists, more than
    // the driver's five looks and the reconciler's list at every step in
    // the 15 poll intervals they span.
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.lose_create_answers = 1;
        w.hide_next_created = 60;
    }
    let app = spawn(&env, "alice", |_| {}).await;
    app.launch().await;
    let view = app.wait_for("building", WAIT).await;
    let recorded = server_of_recorded(&env.fake, &view);

    // Act / Assert: once the first shows up, it is deleted; the VM keeps
    // the server it recorded.
    until("the duplicate to be deleted", || {
        let w = env.fake.world();
        w.servers.len() == 2
            && w.servers
                .values()
                .all(|s| (s.id == recorded) == (s.task_state.as_deref() != Some("deleting")))
    })
    .await;
    assert_eq!(app.view().await["state"], "building");
}

#[tokio::test]
async fn a_lost_create_answer_does_not_stall_the_other_launches_while_its_server_is_looked_for() {
    // Arrange: alice's create answer is lost and her server stays out of
    // every list, so the driver keeps looking for it, with waits doubling
    // from a poll interval of 2 s (2 + 4 + 8 + 16 s: longer than WAIT).
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.lose_create_answers = 1;
        w.hide_next_created = 1000;
    }
    let alice = spawn(&env, "alice", |c| {
        c.provision.poll_interval_ms = NonZero::new(2000).unwrap();
        c.provision.reconcile_interval_seconds = 3600;
    })
    .await;
    alice.launch().await;
    let looked_after_the_create = || {
        let calls = env.fake.calls();
        let Some(post) = calls
            .iter()
            .position(|c| c.method == Method::POST && c.path == "servers")
        else {
            return false;
        };
        calls[post..]
            .iter()
            .any(|c| c.method == Method::GET && c.path == "servers/detail")
    };
    until(
        "the driver to look for alice's lost server",
        looked_after_the_create,
    )
    .await;

    // Act: bob launches while the driver waits to look again.
    let bob = alice.another_user("bob").await;
    assert_is_redirect_to(&bob.launch(REPO, "main", "").await, "/VM_status");

    // Assert: bob's launch moves on (its server is made) while alice's
    // server is still being looked for, not made a second time.
    let deadline = Instant::now() + WAIT;
    loop {
        let state = bob.api_vm_json().await["state"].clone();
        if state != "requested" && state != "creating" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob's launch stalled in {state} while the driver looked for alice's server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alice.view().await["state"], "creating");
    let creates = env
        .fake
        .find_calls(Method::POST, "servers")
        .into_iter()
        .filter(|c| c.path == "servers")
        .count();
    assert_eq!(
        creates, 2,
        "alice's lost one and bob's, no second for alice"
    );
}

/// The VM's recorded server: the one holding its floating IP.
fn server_of_recorded(fake: &FakeOpenStack, view: &Value) -> String {
    let address = view["address"].as_str().expect("an address");
    let w = fake.world();
    let fip = w
        .fips
        .values()
        .find(|f| f.address == address)
        .expect("the VM's floating IP");
    w.servers
        .values()
        .find(|s| Some(&s.port_id) == fip.port_id.as_ref())
        .expect("the server holding it")
        .id
        .clone()
}

#[tokio::test]
async fn reconciler_deletes_only_abandoned_builders_of_its_own_installation() {
    // Arrange: three old builders of ours (one whose build says it may
    // still run), and an old one of another installation.
    let env = setup().await;
    let app = spawn(&env, "alice", |_| {}).await;
    let ours = app.installation().await;
    let builder = |owner: &InstallationId, until: Option<chrono::DateTime<chrono::Utc>>| {
        let mut m = BTreeMap::from([
            (META_IMAGE_BUILD.to_owned(), "snap".to_owned()),
            (META_INSTANCE.to_owned(), owner.to_string()),
        ]);
        if let Some(until) = until {
            m.insert(META_BUILD_UNTIL.into(), until.to_rfc3339());
        }
        let (id, _) = env.fake.add_server("snap-builder", m, BTreeMap::new());
        env.fake.world().servers.get_mut(&id).unwrap().created = "2020-01-01T00:00:00Z".into();
        id
    };
    let now = chrono::Utc::now();
    let abandoned = builder(&ours, Some(now - chrono::Duration::minutes(5)));
    let no_deadline = builder(&ours, None);
    let running = builder(&ours, Some(now + chrono::Duration::hours(1)));
    let foreign = builder(&InstallationId::generate(), None);

    // Act
    app.wait_for_reconcile_passes(2, WAIT).await;

    // Assert
    let w = env.fake.world();
    let left: Vec<bool> = [&abandoned, &no_deadline, &running, &foreign]
        .iter()
        .map(|id| w.servers.get(*id).is_some_and(|s| s.task_state.is_none()))
        .collect();
    assert_eq!(left, [false, false, true, true]);
}

#[tokio::test]
async fn list_owned_reads_every_page_of_nova_cinder_and_neutron() {
    // Arrange: five of everything of ours, with the other installation's
    // in between, and every service paging at 2.
    let env = setup().await;
    let ours = owner();
    let tagged = |o: &InstallationId| BTreeMap::from([(META_INSTANCE.to_owned(), o.to_string())]);
    for i in 0..5 {
        let mut meta = tagged(&ours);
        meta.insert(META_VM.into(), stackbinder::domain::VmId::new().to_string());
        env.fake
            .add_server(&format!("ours-{i}"), meta, tagged(&ours));
        env.fake.add_fip(&format!("stackbinder {ours}"));
        env.fake.add_server(
            &format!("theirs-{i}"),
            another_installation(),
            BTreeMap::new(),
        );
    }
    env.fake.world().page_size = 2;

    // Act
    let owned = env.cloud.list_owned(&ours).await.unwrap();

    // Assert
    assert_eq!(owned.servers.len(), 5);
    assert_eq!(owned.volume_ids.len(), 5);
    assert_eq!(owned.floating_ips.len(), 5);
    for path in ["servers/detail", "volumes/detail", "floatingips"] {
        let pages = env.fake.find_calls(Method::GET, path);
        assert!(
            pages.len() >= 3 && pages.iter().skip(1).all(|c| c.query.contains_key("marker")),
            "{path}: {} pages",
            pages.len()
        );
    }
}

#[tokio::test]
async fn a_dying_vm_gives_back_its_floating_ip_before_its_busy_volume() {
    // Arrange: a VM whose boot volume stays busy long after its server goes.
    let env = setup_with(|c| c.delete_volume_on_termination = false, false).await;
    let app = spawn(&env, "alice", |c| {
        c.provision.reconcile_interval_seconds = 3600;
    })
    .await;
    app.launch().await;
    app.wait_for("building", WAIT).await;
    assert_eq!(env.fake.fips().len(), 1);
    env.fake.inject(crate::fake_openstack::Fault {
        method: Method::DELETE,
        path: "volumes/",
        status: 409,
        body: serde_json::json!({"conflictingRequest": {"code": 409, "message": "Volume is detaching"}}),
        retry_after: None,
        times: 1000,
    });

    // Act
    app.delete().await;

    // Assert: while Cinder holds the volume, the address is already given
    // back, so no other VM can take it and lose it to this one's release.
    until("the floating IP to be released", || {
        env.fake.fips().is_empty()
    })
    .await;
    assert_eq!(app.view().await["state"], "deleting");
    assert_eq!(env.fake.volume_count(), 1, "the volume is still busy");
}

#[tokio::test]
async fn find_server_is_unavailable_while_a_cell_is_down() {
    // Arrange: our VM's server is in a cell that is down, so the list
    // shows it without its metadata.
    let env = setup().await;
    let ours = owner();
    let vm = stackbinder::domain::VmId::new().to_string();
    let meta = BTreeMap::from([
        (META_INSTANCE.to_owned(), ours.to_string()),
        (META_VM.to_owned(), vm.clone()),
    ]);
    let (server, _) = env.fake.add_server("binder-alice", meta, BTreeMap::new());
    env.fake.world().down_cell.insert(server);

    // Act
    let found = env.cloud.find_server(&ours, &vm).await;

    // Assert: not "no such server", which would make a second one.
    assert!(
        matches!(found, Err(stackbinder::cloud::CloudError::Unavailable(_))),
        "{found:?}"
    );
}
