//! A pool's life without claims: dead VMs replaced, the pool shrinking
//! for users, the schedule's sizes, and the reconciler leaving the pool's
//! servers alone but deleting a pool server nobody knows.

use super::{App, is_pool_create, spawn};
use crate::helpers::spec;
use axum::http::Method;
use stackbinder::cloud::{META_INSTANCE, META_POOL, META_VM};
use stackbinder::config::ScheduleEntry;
use stackbinder::domain::VmId;
use stackbinder::store::PoolState;
use std::time::Duration;

fn deleted(app: &App, server: &str) -> bool {
    app.fake
        .find_calls(Method::DELETE, "servers/")
        .iter()
        .any(|c| c.path == format!("servers/{server}"))
}

#[tokio::test]
async fn a_pool_vm_whose_server_dies_before_a_claim_is_deleted_and_replaced() {
    // Arrange
    let app = spawn(|c| {
        c.pool.size = 2;
        c.provision.reconcile_interval_seconds = 0;
    })
    .await;
    let ready = app.fill(2).await;
    let dead = ready[0].clone();
    let server = dead.server_id.clone().unwrap();

    // Act: Nova puts its server in ERROR.
    app.fake.world().servers.get_mut(&server).unwrap().status = "ERROR".into();

    // Assert: deleted in Nova, forgotten, and a third pool VM booted.
    app.wait_for_calls("the dead server's deletion", |_| deleted(&app, &server))
        .await;
    let pool = app
        .wait_for_pool("a replacement", |pool| {
            pool.len() == 2 && pool.iter().all(|vm| vm.id != dead.id)
        })
        .await;
    assert!(
        pool.iter().any(|vm| vm.id == ready[1].id),
        "the other stays"
    );
    assert_eq!(
        app.creates().iter().filter(|s| is_pool_create(s)).count(),
        3
    );
    assert!(!deleted(&app, ready[1].server_id.as_deref().unwrap()));
}

#[tokio::test]
async fn a_queued_launch_makes_the_pool_shrink_not_yet_ready_vms_first() {
    // Arrange: three places, all the pool's, none ready to be claimed.
    let app = spawn(|c| {
        c.pool.size = 3;
        c.cloud.max_vms = Some(3);
    })
    .await;
    let booted = app
        .wait_for_pool("three booting", |pool| {
            pool.iter()
                .filter(|vm| vm.state == PoolState::Booting)
                .count()
                == 3
        })
        .await;
    app.store().pool_vm_polled(booted[0].id).await.unwrap();

    // Act: two users launch: the first claims, the second waits for room.
    app.web.launch().await;
    let bob = app.web.another_user("bob").await;
    bob.launch(crate::app::web_app::REPO, "HEAD", "").await;

    // Assert: the youngest booting pool VM gave its place to bob, who
    // boots cold; the other stays.
    let gone = booted[2].server_id.clone().unwrap();
    app.wait_for_calls("the shrink", |_| deleted(&app, &gone))
        .await;
    app.web.wait_for("building", super::LIMIT).await;
    let deadline = std::time::Instant::now() + super::LIMIT;
    while app.creates().iter().filter(|s| !is_pool_create(s)).count() < 1 {
        assert!(std::time::Instant::now() < deadline, "bob's boot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!deleted(&app, booted[1].server_id.as_deref().unwrap()));
    let pool = app.pool().await;
    assert_eq!(pool.len(), 1, "{pool:#?}");
    assert_eq!(pool[0].id, booted[1].id);
}

#[tokio::test]
async fn the_schedule_sets_the_pool_size_up_and_down() {
    // Arrange: a schedule that covers every minute of the week.
    let always = |size| ScheduleEntry::parse(&format!("Mon-Sun 00:00-24:00 size={size}")).unwrap();
    let bigger = spawn(|c| {
        c.pool.size = 1;
        c.pool.schedule = vec![always(3)];
    })
    .await;
    let smaller = spawn(|c| {
        c.pool.size = 3;
        c.pool.schedule = vec![always(1)];
    })
    .await;

    // Act
    let booting = |n| {
        move |pool: &[stackbinder::store::PoolVm]| {
            pool.len() == n && pool.iter().all(|vm| vm.state == PoolState::Booting)
        }
    };
    let grown = bigger.wait_for_pool("three pool VMs", booting(3)).await;
    let shrunk = smaller.wait_for_pool("one pool VM", booting(1)).await;

    // Assert: what Nova was asked for.
    assert_eq!(grown.len(), 3);
    assert_eq!(shrunk.len(), 1);
    assert_eq!(bigger.creates().len(), 3);
    assert_eq!(smaller.creates().len(), 1);
}

#[tokio::test]
async fn the_reconciler_keeps_the_pool_and_deletes_a_pool_server_nobody_knows() {
    // Arrange
    let app = spawn(|c| {
        c.pool.size = 2;
        c.provision.reconcile_interval_seconds = 0;
        c.provision.orphan_grace_minutes = 0;
    })
    .await;
    let ready = app.fill(2).await;
    // A pool server of ours whose row was lost (a crash before the row).
    let installation = app.web.installation().await;
    let mut orphan = spec(&stackbinder::config::CloudConfig::default(), "nobody");
    orphan.name = "binder-pool-lost".into();
    orphan.metadata = [
        (META_VM.to_owned(), VmId::new().to_string()),
        (META_POOL.to_owned(), "1".to_owned()),
        (META_INSTANCE.to_owned(), installation.to_string()),
    ]
    .into();
    orphan.image = crate::fake_openstack::IMAGE.into();
    let lost = app
        .web
        .provisioner()
        .cloud()
        .create_server(&orphan)
        .await
        .unwrap();

    // Act: let the reconciler look a few times.
    app.wait_for_calls("the orphan's deletion", |_| deleted(&app, &lost))
        .await;
    app.web.wait_for_reconcile_passes(3, super::LIMIT).await;

    // Assert: the pool's servers and boot volumes are untouched.
    for vm in &ready {
        assert!(!deleted(&app, vm.server_id.as_deref().unwrap()), "{vm:#?}");
        for volume in &vm.volume_ids.0 {
            assert!(app.fake.world().volumes.contains_key(volume));
        }
    }
    assert_eq!(app.pool().await.len(), 2);
}

#[tokio::test]
async fn admin_and_metrics_show_the_pool_its_claims_and_misses() {
    // Arrange: a pool of one that prebuilds a course repository.
    let app = spawn(|c| {
        c.pool.size = 1;
        c.pool.repos = vec![
            serde_json::from_value(serde_json::json!({
                "repo": "https://github.com/org/course", "ref": "main"
            }))
            .unwrap(),
        ];
        c.registration.admins = vec![stackbinder::domain::Login::parse("alice").unwrap().into()];
    })
    .await;
    let ready = app.fill(1).await;

    // Act: the page and the metrics with one ready VM, then two launches
    // (the first claims it, the second finds none ready).
    let admin = app.web.get("/admin").await;
    let before = app.web.get("/metrics").await;
    app.web.launch().await;
    let bob = app.web.another_user("bob").await;
    bob.launch(crate::app::web_app::REPO, "HEAD", "").await;
    let after = app.web.get("/metrics").await;

    // Assert
    let pool = &admin[admin.find("id=\"pool\"").expect("the pool's section")..];
    assert!(pool.contains(&ready[0].name), "{pool}");
    assert!(pool.contains("<td>ready</td>"), "{pool}");
    assert!(
        pool.contains("https://github.com/org/course@main"),
        "{pool}"
    );
    assert!(before.contains("stackbinder_pool_ready 1\n"), "{before}");
    assert!(
        after.contains("stackbinder_pool_claims_total 1\n"),
        "{after}"
    );
    assert!(
        after.contains("stackbinder_pool_misses_total 1\n"),
        "{after}"
    );
    // What the pool VM was booted to build ahead.
    let boot = app.boot_data_of(ready[0].id);
    assert_eq!(boot.prebuild.len(), 1);
    assert_eq!(boot.prebuild[0].repo, "https://github.com/org/course");
    assert_eq!(boot.prebuild[0].git_ref, "main");
}

#[tokio::test]
async fn a_pool_vm_unclaimed_for_max_idle_hours_is_recycled_and_replaced() {
    // Arrange: a ready pool VM, then a day passes (its record is aged:
    // the tests cannot wait for max_idle_hours).
    let app = spawn(|c| {
        c.pool.size = 1;
        c.pool.max_idle_hours = 24;
    })
    .await;
    let ready = app.fill(1).await;
    let stale = ready[0].clone();
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(25);
    let age = "UPDATE pool_vms SET created_at = $1 WHERE id = $2";
    match app.store().backend() {
        stackbinder::store::Backend::Sqlite(pool) => {
            let q = sqlx::query(age).bind(long_ago).bind(stale.id);
            q.execute(pool).await.map(drop)
        }
        stackbinder::store::Backend::Postgres(pool) => {
            let q = sqlx::query(age).bind(long_ago).bind(stale.id);
            q.execute(pool).await.map(drop)
        }
    }
    .unwrap();

    // Act: the driver's next steps.
    let server = stale.server_id.clone().unwrap();
    app.wait_for_calls("the stale server's deletion", |_| deleted(&app, &server))
        .await;
    let pool = app
        .wait_for_pool("a fresh pool VM", |pool| {
            pool.len() == 1 && pool[0].id != stale.id && pool[0].server_id.is_some()
        })
        .await;

    // Assert: one new pool server, and its boot volume went with it.
    assert_eq!(
        app.creates().iter().filter(|s| is_pool_create(s)).count(),
        2
    );
    assert_ne!(pool[0].server_id.as_deref(), Some(server.as_str()));
    app.wait_for_calls("the stale boot volume's deletion", |fake| {
        stale
            .volume_ids
            .0
            .iter()
            .all(|v| !fake.world().volumes.contains_key(v))
    })
    .await;
}
