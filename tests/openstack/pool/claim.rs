//! Launches claim ready pool VMs, once each, under concurrency.

use super::{LIMIT, is_pool_create, spawn};
use crate::app::web_app::REPO;
use futures_util::future::join_all;
use reqwest::StatusCode;
use stackbinder::cloud::{META_OWNER, META_POOL, META_VM};
use stackbinder::domain::{GithubId, LaunchPath, Login};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn fifty_concurrent_launches_claim_the_ten_ready_pool_vms_once_each() {
    // Arrange: ten ready pool VMs, fifty users.
    let app = spawn(|c| c.pool.size = 10).await;
    let ready = app.fill(10).await;
    let pool_servers: HashSet<String> =
        ready.iter().filter_map(|vm| vm.server_id.clone()).collect();
    assert_eq!(pool_servers.len(), 10);
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(app.web.another_user(&format!("student{i}")).await);
    }

    // Act: all launch at once.
    let answers = join_all(users.iter().map(|u| u.launch(REPO, "HEAD", ""))).await;

    // Assert: ten claimed, forty cold, no pool VM twice.
    for answer in &answers {
        assert!(answer.status().is_redirection(), "{}", answer.status());
    }
    let mut claimed = Vec::new();
    let mut cold = 0;
    for i in 0..50 {
        let owner = GithubId::for_demo(&Login::parse(&format!("student{i}")).unwrap());
        let vm = app.store().live_vm_of(owner).await.unwrap().expect("a VM");
        match vm.launch_path {
            LaunchPath::Pool => claimed.push(vm),
            LaunchPath::Cold => cold += 1,
        }
    }
    assert_eq!((claimed.len(), cold), (10, 40));
    let claimed_servers: HashSet<String> = claimed
        .iter()
        .map(|vm| vm.server_id.clone().expect("the pool VM's server"))
        .collect();
    assert_eq!(claimed_servers, pool_servers, "each pool VM claimed once");
    let claimed_ids: HashSet<_> = claimed.iter().map(|vm| vm.id).collect();
    assert!(ready.iter().all(|vm| claimed_ids.contains(&vm.id)));
    // What Nova received: the ten pool servers renamed to their owners'
    // names, forty servers booted for users, and pool VMs to refill.
    let deadline = Instant::now() + LIMIT;
    while app.renames().len() < 10
        || app.creates().iter().filter(|s| !is_pool_create(s)).count() < 40
    {
        assert!(Instant::now() < deadline, "renames {:?}", app.renames());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renames = app.renames();
    let renamed: HashSet<&String> = renames.iter().map(|(id, _)| id).collect();
    assert_eq!(renamed.len(), 10);
    assert!(renamed.iter().all(|id| pool_servers.contains(*id)));
    for vm in &claimed {
        let server = vm.server_id.as_deref().unwrap();
        assert!(
            renames.contains(&(server.to_owned(), vm.name.clone())),
            "{renames:?}"
        );
        let marks = &app.fake.world().servers[server].metadata;
        assert_eq!(marks[META_OWNER], vm.owner_id.to_string());
        assert_eq!(marks[META_VM], vm.id.to_string());
        assert!(!marks.contains_key(META_POOL), "{marks:?}");
    }
    let creates = app.creates();
    let user_creates = creates.iter().filter(|s| !is_pool_create(s)).count();
    assert_eq!(user_creates, 40);
    // Each claimed VM's held request got its owner's job and a new secret;
    // the boot secret no longer acts for it.
    for vm in &claimed {
        let (boot, status, job) = app.answer_of(vm.id).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert_eq!(job["login"], vm.owner_login.to_string());
        assert_eq!(job["repo"], REPO);
        let rotated = job["callback_secret"].as_str().expect("a rotated secret");
        assert_ne!(rotated, boot.callback_secret);
        let report = serde_json::json!({"vm": vm.id, "seq": 1, "phase": "cloning", "log": []});
        let with = |secret: &str| {
            reqwest::Client::new()
                .post(boot.callback_url.as_str())
                .bearer_auth(secret.to_owned())
                .json(&report)
                .send()
        };
        assert_eq!(
            with(&boot.callback_secret).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert!(with(rotated).await.unwrap().status().is_success());
    }
    app.wait_for_pool("the pool refilled", |pool| pool.len() == 10)
        .await;
    assert!(creates.iter().filter(|s| is_pool_create(s)).count() >= 10);
}

#[tokio::test]
async fn a_repository_at_its_cap_waits_in_the_queue_instead_of_claiming() {
    // Arrange: two ready pool VMs, a workshop cap of one.
    let app = spawn(|c| {
        c.pool.size = 2;
        c.launch.repo_caps = [(REPO.to_owned(), 1)].into_iter().collect();
    })
    .await;
    app.fill(2).await;

    // Act: alice claims one; bob launches the same repository.
    app.web.launch().await;
    let bob = app.web.another_user("bob").await;
    bob.launch(REPO, "HEAD", "").await;

    // Assert: bob queues for a VM of his own; the other pool VM stays.
    let alice = GithubId::for_demo(&Login::parse("alice").unwrap());
    let bobs = GithubId::for_demo(&Login::parse("bob").unwrap());
    let store = app.store();
    let alice_vm = store.live_vm_of(alice).await.unwrap().unwrap();
    let bob_vm = store.live_vm_of(bobs).await.unwrap().unwrap();
    assert_eq!(alice_vm.launch_path, LaunchPath::Pool);
    assert_eq!(bob_vm.launch_path, LaunchPath::Cold);
    assert_eq!(bob_vm.state.as_str(), "requested");
    let ready = app.pool().await;
    assert!(
        ready
            .iter()
            .any(|vm| vm.state == stackbinder::store::PoolState::Ready)
    );
}

#[tokio::test]
async fn only_a_launch_of_the_default_profile_claims_a_pool_vm() {
    // Arrange: pool VMs are of the first profile, "standard".
    let app = spawn(|c| {
        c.pool.size = 1;
        c.profiles = super::standard_and_big();
    })
    .await;
    app.fill(1).await;

    // Act: alice asks for "big", bob for the default.
    let page = app
        .web
        .get(&format!("/VM_start?giturl={REPO}&profile=big"))
        .await;
    let csrf = crate::app::web_app::csrf_from(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("giturl", REPO),
        ("profile", "big"),
    ];
    assert!(app.web.post("/VM_start", &form).await.is_redirection());
    let bob = app.web.another_user("bob").await;
    bob.launch(REPO, "HEAD", "").await;

    // Assert
    let store = app.store();
    let of = |login: &str| GithubId::for_demo(&Login::parse(login).unwrap());
    let alice_vm = store.live_vm_of(of("alice")).await.unwrap().unwrap();
    let bob_vm = store.live_vm_of(of("bob")).await.unwrap().unwrap();
    assert_eq!(alice_vm.launch_path, LaunchPath::Cold);
    assert_eq!(bob_vm.launch_path, LaunchPath::Pool);
}
