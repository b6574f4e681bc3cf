//! Expiry, extensions, idle culling, the capacity queue, maintenance and
//! the reconciler: the cloud stays tidy without anyone watching.

use crate::helpers::{REPO, TestOptions, spawn_app, spawn_app_with};
use chrono::{Duration as ChronoDuration, Utc};
use reqwest::StatusCode;
use stackbinder::cloud::{Cloud, InstallationId, META_INSTANCE, META_VM, ServerSpec};
use stackbinder::domain::{GithubId, VmId};
use stackbinder::store::VmRecord;
use std::collections::BTreeMap;

async fn the_vm(app: &crate::helpers::TestApp, view: &serde_json::Value) -> VmRecord {
    let id: VmId = view["id"].as_str().unwrap().parse().unwrap();
    app.store().vm(id).await.unwrap().unwrap()
}

/// Wait for a VM that is settled (ready) to be deleted by the driver.
async fn wait_until_deleted(app: &crate::helpers::TestApp) {
    app.wait_for_view(&app.browser, "the VM to be deleted", |v| {
        v["state"] == "deleted"
    })
    .await;
}

async fn events(app: &crate::helpers::TestApp, vm: &VmRecord) -> Vec<String> {
    app.store()
        .recent_events(vm.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn an_expired_vm_is_deleted_with_its_volume_and_the_log_says_why() {
    // Arrange
    let app = spawn_app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    let vm = the_vm(&app, &view).await;
    assert!(vm.expires_at.unwrap() > Utc::now() + ChronoDuration::hours(7));

    // Act: its time runs out
    app.store()
        .set_expiry(vm.id, Utc::now() - ChronoDuration::seconds(1))
        .await
        .unwrap();
    wait_until_deleted(&app).await;

    // Assert
    assert_eq!(app.cloud.server_count(), 0);
    assert_eq!(app.cloud.volume_count(), 0);
    assert!(
        events(&app, &vm)
            .await
            .iter()
            .any(|e| e.contains("expired after"))
    );
}

#[tokio::test]
async fn the_owner_can_extend_the_expiry_a_limited_number_of_times() {
    let app = spawn_app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    assert_eq!(view["extensions_left"], 2);
    let before = the_vm(&app, &view).await.expires_at.unwrap();

    let csrf = app.csrf().await;
    let response = app.post_form("/VM_extend", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let after = the_vm(&app, &view).await.expires_at.unwrap();
    assert_eq!((after - before).num_minutes(), 4 * 60);

    assert_eq!(
        app.post_form("/VM_extend", &[("csrf", &csrf)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let third = app.post_form("/VM_extend", &[("csrf", &csrf)]).await;
    assert_eq!(third.status(), StatusCode::CONFLICT);
    assert!(third.text().await.unwrap().contains("cannot be extended"));
    assert_eq!(app.api_vm_json().await["extensions_left"], 0);
    // Without its CSRF token, nothing is extended.
    let forged = app.post_form("/VM_extend", &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_status_page_counts_down_to_the_expiry() {
    let app = spawn_app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let (_, page) = app.get_page("/VM_status").await;
    assert!(page.contains("id=\"expiry\" data-expires=\"20"), "{page}");
    assert!(page.contains("Keep it 4 h longer"));
}

#[tokio::test]
async fn an_idle_vm_is_culled_and_a_used_one_is_not() {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.launch.idle_timeout_minutes = 30;
            c.provision.idle_check_seconds = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;

    // Used a minute ago: the warning stays away and the VM stays.
    app.cloud
        .set_jupyter_last_activity(Utc::now() - ChronoDuration::minutes(1));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let vm = the_vm(&app, &view).await;
    assert_eq!(vm.state.as_str(), "ready");
    assert!(
        vm.last_activity_at.is_some(),
        "the driver asked Jupyter for its activity"
    );
    assert!(app.api_vm_json().await["idle_warning"].is_null());

    // Idle for longer than the limit: deleted, and the log says why.
    app.cloud
        .set_jupyter_last_activity(Utc::now() - ChronoDuration::minutes(45));
    wait_until_deleted(&app).await;
    assert_eq!(app.cloud.server_count(), 0);
    assert!(
        events(&app, &vm)
            .await
            .iter()
            .any(|e| e.contains("idle for 45 min"))
    );
}

#[tokio::test]
async fn the_status_page_warns_before_idle_culling() {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.launch.idle_timeout_minutes = 60;
            c.provision.idle_check_seconds = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    app.cloud
        .set_jupyter_last_activity(Utc::now() - ChronoDuration::minutes(50));
    let view = app
        .wait_for_view(&app.browser, "an idle warning", |v| {
            v["idle_warning"].is_string()
        })
        .await;
    assert!(
        view["idle_warning"]
            .as_str()
            .unwrap()
            .contains("will be deleted")
    );
    assert_eq!(view["state"], "ready");
}

#[tokio::test]
async fn when_full_a_launch_waits_in_the_queue_and_starts_when_room_frees() {
    let app = spawn_app_with(TestOptions {
        configure: |c| c.cloud.max_vms = Some(1),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;

    let bob = app.new_browser();
    bob.login_registered("bob").await;
    bob.launch(REPO, "", "").await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let waiting = bob.api_vm_json().await;
    assert_eq!(waiting["state"], "requested");
    assert_eq!(waiting["queue_ahead"], 0);
    assert_eq!(app.cloud.created().len(), 1, "no second server while full");
    let (_, page) = bob.get_page("/VM_status").await;
    assert!(page.contains("All VM slots are in use"));

    // Ada deletes hers: Bob's starts.
    app.delete_vm().await;
    app.wait_for_state_of(&bob, "ready").await;
    assert_eq!(app.cloud.created().len(), 2);
}

#[tokio::test]
async fn a_queued_launch_fails_after_the_queue_timeout_saying_why() {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.cloud.max_vms = Some(1);
            c.launch.queue_timeout_minutes = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let bob = app.new_browser();
    bob.login_registered("bob").await;
    bob.launch(REPO, "", "").await;
    let view = app.wait_for_state_of(&bob, "failed").await;
    let error = view["error"].as_str().unwrap();
    assert!(
        error.contains("queued") && error.contains("try again later"),
        "{error}"
    );
}

#[tokio::test]
async fn a_repository_cap_holds_back_only_that_repository() {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.launch.repo_caps = BTreeMap::from([(REPO.to_owned(), 1)]);
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;

    let bob = app.new_browser();
    bob.login_registered("bob").await;
    bob.launch(REPO, "", "").await;
    let carl = app.new_browser();
    carl.login_registered("carl").await;
    carl.launch("https://github.com/binder-examples/conda", "", "")
        .await;

    app.wait_for_state_of(&carl, "ready").await;
    assert_eq!(bob.api_vm_json().await["state"], "requested");
}

#[tokio::test]
async fn maintenance_refuses_launches_with_the_banner_on_every_page() {
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.cloud.max_vms = Some(0);
            c.server.banner = Some("Back on Monday.".into());
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    let (_, home) = app.get_page("/").await;
    assert!(home.contains("Launches are paused for maintenance. Back on Monday."));

    let response = app.launch(REPO, "", "").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Launches are paused") && page.contains("Back on Monday."),
        "{page}"
    );
    assert_eq!(app.api_vm().await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.cloud.created().len(), 0);
}

/// A server of this installation's that no record explains.
fn orphan_spec(owner: &InstallationId, delete_volume_on_termination: bool) -> ServerSpec {
    ServerSpec {
        name: "ghost".into(),
        image: "img".into(),
        flavor: "m1".into(),
        volume_size_gb: 10,
        delete_volume_on_termination,
        key_name: None,
        security_groups: vec![],
        network: None,
        user_data: String::new(),
        metadata: BTreeMap::from([
            (META_VM.to_owned(), VmId::new().to_string()),
            (META_INSTANCE.to_owned(), owner.to_string()),
        ]),
        home_volume: None,
        availability_zone: None,
    }
}

#[tokio::test]
async fn the_reconciler_deletes_orphans_after_the_grace_period() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |c| {
            c.provision.orphan_grace_minutes = 0;
            c.cloud.delete_volume_on_termination = false;
        },
        ..TestOptions::default()
    })
    .await;
    // A server of ours that no record explains (a crash, a manual mistake),
    // whose boot volume the driver had marked as ours.
    let owner = app.provisioner().installation().clone();
    let id = app
        .cloud
        .create_server(&orphan_spec(&owner, false))
        .await
        .unwrap();
    let server = app.cloud.get_server(&id).await.unwrap().unwrap();
    app.cloud
        .tag_volume(&server.volume_ids[0], &owner, "ghost-vm")
        .await
        .unwrap();
    assert_eq!(app.cloud.server_count(), 1);

    app.provisioner().reconcile().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.cloud.server_count(), 0, "the orphan server is deleted");
    assert_eq!(
        app.cloud.volume_count(),
        1,
        "its volume stays until it is free"
    );

    app.provisioner().reconcile().await.unwrap();
    assert_eq!(
        app.cloud.volume_count(),
        0,
        "then the orphan volume goes too"
    );
}

#[tokio::test]
async fn the_reconciler_leaves_live_vms_alone_and_honours_the_grace_period() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let owner = app.provisioner().installation().clone();
    app.cloud
        .create_server(&orphan_spec(&owner, true))
        .await
        .unwrap();

    // Default grace: 15 minutes. Nothing is deleted yet.
    app.provisioner().reconcile().await.unwrap();
    assert_eq!(app.cloud.server_count(), 2);
    assert_eq!(app.api_vm_json().await["state"], "ready");
}

#[tokio::test]
async fn a_vm_whose_server_was_deleted_outside_stackbinder_is_marked_gone() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |c| c.provision.orphan_grace_minutes = 0,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    let vm = the_vm(&app, &view).await;

    // Someone deletes the server with the openstack CLI.
    app.cloud
        .delete_server(vm.server_id.as_deref().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Gone only at the second 404 (a grace period apart: none here).
    app.provisioner().reconcile().await.unwrap();
    assert_eq!(
        app.api_vm_json().await["state"],
        "ready",
        "one 404 is not enough"
    );
    app.provisioner().reconcile().await.unwrap();
    for _ in 0..50 {
        app.step().await;
        if app.api_vm_json().await["state"] == "deleted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.api_vm_json().await["state"], "deleted");

    assert_eq!(app.cloud.volume_count(), 0);
    assert!(
        events(&app, &vm)
            .await
            .iter()
            .any(|e| e.contains("deleted outside stackbinder"))
    );
    // And the owner can launch again.
    assert!(
        app.store()
            .live_vm_of(GithubId(vm.owner_id.0))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn metrics_count_launches_failures_and_cloud_calls() {
    let app = spawn_app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;

    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(text.contains("stackbinder_launches_total 1"), "{text}");
    assert!(
        text.contains("stackbinder_vms{state=\"ready\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("stackbinder_launch_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("stackbinder_cloud_request_duration_seconds_count{service=\"compute\",operation=\"create_server\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stuck_deletion_is_asked_again_then_fails_with_its_reason_and_is_retried_later() {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |c| {
            c.provision.delete_retry_seconds = 0;
            c.provision.delete_give_up_seconds = 1;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    app.cloud.set_stuck_deletes(true);

    app.delete_vm().await;
    let deletes_before = app
        .cloud
        .calls(stackbinder::cloud::simulated::Op::DeleteServer);
    for _ in 0..3 {
        app.step().await;
    }
    assert!(
        app.cloud
            .calls(stackbinder::cloud::simulated::Op::DeleteServer)
            > deletes_before + 1,
        "a stalled deletion is asked for again"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.step().await;
    let failed = app.api_vm_json().await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("failed while deleting")
    );
    let vm = the_vm(&app, &view).await;
    assert!(vm.expires_at.unwrap() < Utc::now() + ChronoDuration::minutes(31));

    // The cloud recovers; the retry at expiry finishes the job.
    app.cloud.set_stuck_deletes(false);
    app.store()
        .set_expiry(vm.id, Utc::now() - ChronoDuration::seconds(1))
        .await
        .unwrap();
    for _ in 0..40 {
        app.step().await;
        if app.api_vm_json().await["state"] == "deleted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.api_vm_json().await["state"], "deleted");
    assert_eq!(app.cloud.server_count(), 0);
    assert_eq!(app.cloud.volume_count(), 0);
}
