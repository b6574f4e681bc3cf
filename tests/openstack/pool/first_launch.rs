//! A user's first launch with home volumes on claims a ready pool VM too:
//! their storage is made and attached to the claimed server first, and
//! only then does the VM's held request get its job (naming the volume)
//! and its new secret. The claim timeout starts with the job. A returning
//! user's job, too, names the volume attached.

use super::{App, alices_vm, is_pool_create, spawn, wait_for_vm};
use axum::http::Method;
use reqwest::StatusCode;
use serde_json::json;
use stackbinder::cloud::{META_HOME, META_OWNER};
use stackbinder::cloud_init::BootData;
use stackbinder::domain::{GithubId, LaunchPath, Login, VmId};
use std::time::Duration;

async fn with_storage(claim_timeout_seconds: u64) -> App {
    spawn(|c| {
        c.pool.size = 1;
        c.pool.claim_timeout_seconds = claim_timeout_seconds;
        c.storage.home_volume_gb = 10;
        c.cloud.availability_zone = Some("nova".into());
    })
    .await
}

/// What the VM's first progress report with `secret` is answered.
async fn report_with(boot: &BootData, vm: VmId, secret: &str) -> StatusCode {
    let report = json!({"vm": vm, "seq": 1, "phase": "cloning", "log": []});
    reqwest::Client::new()
        .post(boot.callback_url.as_str())
        .bearer_auth(secret)
        .json(&report)
        .send()
        .await
        .unwrap()
        .status()
}

fn metric(page: &str, name: &str) -> String {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        .to_owned()
}

#[tokio::test]
async fn a_first_launch_with_storage_on_claims_a_pool_vm() {
    // Arrange: a ready pool VM; alice has no storage yet. Nova is slow to
    // finish attachments, so the attaching can be watched.
    let app = with_storage(30).await;
    let ready = app.fill(1).await;
    let server = ready[0].server_id.clone().unwrap();
    let before = app.web.get("/metrics").await;
    app.fake.world().hold_attachments = true;

    // Act: alice launches; her storage is made and attached, and the VM
    // asks for its job (held since it booted) meanwhile.
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    let attach_path = format!("servers/{server}/os-volume_attachments");
    app.wait_for_calls("the attachment", |fake| {
        !fake.find_calls(Method::POST, &attach_path).is_empty()
    })
    .await;
    let owner = claimed.owner_id;
    let home = app.store().home_volume(owner).await.unwrap().unwrap();
    let volume_path = format!("volumes/{}", home.volume_id);
    let looks = || app.fake.find_calls(Method::GET, &volume_path).len();
    let seen = looks();
    app.wait_for_calls("looks while attaching", |_| looks() >= seen + 3)
        .await;
    let answered_while_attaching = app.answered(claimed.id);
    let boot = app.boot_data_of(claimed.id);
    let boot_report_while_attaching = report_with(&boot, claimed.id, &boot.callback_secret).await;
    app.fake.world().hold_attachments = false;
    let (_, status, job) = app.answer_of(claimed.id).await;
    let settled = wait_for_vm(&app, "the claim settled", |vm| {
        vm.claim_settled_at.is_some()
    })
    .await;
    let after = app.web.get("/metrics").await;

    // Assert: the pool VM is hers, counted as a claim, not a miss.
    assert_eq!(claimed.launch_path, LaunchPath::Pool);
    assert_eq!(claimed.id, ready[0].id);
    assert_eq!(claimed.server_id.as_deref(), Some(server.as_str()));
    assert_eq!(settled.id, claimed.id);
    let misses = "stackbinder_pool_misses_total";
    let claims = "stackbinder_pool_claims_total";
    assert_eq!(metric(&after, misses), metric(&before, misses));
    assert_eq!(
        (
            metric(&before, claims).as_str(),
            metric(&after, claims).as_str()
        ),
        ("0", "1")
    );
    // Cinder made one volume, hers; Nova attached it once, to that server.
    let creates = app.fake.volume_creates();
    assert_eq!(creates.len(), 1, "{creates:#?}");
    assert_eq!(creates[0]["metadata"][META_HOME], owner.to_string());
    assert_eq!(creates[0]["metadata"][META_OWNER], owner.to_string());
    let attaches = app.fake.find_calls(Method::POST, &attach_path);
    assert_eq!(attaches.len(), 1);
    let body = attaches[0].body.clone().unwrap();
    assert_eq!(body["volumeAttachment"]["volumeId"], home.volume_id);
    assert_eq!(
        app.fake
            .find_calls(Method::POST, "os-volume_attachments")
            .len(),
        1
    );
    // The job came only once the volume was attached, naming it, with a
    // new secret; the boot secret never acted for alice.
    assert!(!answered_while_attaching, "the job came before the attach");
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["login"], "alice");
    assert_eq!(job["home_volume_id"], home.volume_id);
    let rotated = job["callback_secret"].as_str().expect("a rotated secret");
    assert_ne!(rotated, boot.callback_secret);
    assert_eq!(boot_report_while_attaching, StatusCode::UNAUTHORIZED);
    assert_eq!(
        report_with(&boot, claimed.id, &boot.callback_secret).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(report_with(&boot, claimed.id, rotated).await.is_success());
    // What the status page told her, in order.
    let events = app.store().recent_events(claimed.id, 50).await.unwrap();
    let at = |text: &str| {
        events
            .iter()
            .position(|e| e.message.contains(text))
            .unwrap_or_else(|| panic!("no {text:?} in {events:#?}"))
    };
    let (made, yours) = (at("created your storage: 10 GB"), at("and yours"));
    let (made, yours) = (events[made].id, events[yours].id);
    assert!(made < yours, "{events:#?}");
    let volume = &app.fake.world().volumes[&home.volume_id];
    assert_eq!(volume.status, "in-use");
    assert_eq!(volume.server_id.as_deref(), Some(server.as_str()));
}

#[tokio::test]
async fn the_claim_timeout_does_not_run_while_the_first_home_volume_is_made() {
    // Arrange: a claim timeout of 2 s; Cinder takes longer to make the
    // volume.
    let app = with_storage(2).await;
    let ready = app.fill(1).await;
    let server = ready[0].server_id.clone().unwrap();
    app.fake.world().hold_creating = true;

    // Act: alice launches; the volume stays `creating` for 3.5 s, then is
    // made; the VM reports at once with the secret its job brought.
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    app.wait_for_calls("the volume's create", |_| {
        !app.fake.volume_creates().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let waiting = alices_vm(&app).await;
    app.fake.world().hold_creating = false;
    let (boot, status, job) = app.answer_of(claimed.id).await;
    let rotated = job["callback_secret"].as_str().expect("a rotated secret");
    let reported = report_with(&boot, claimed.id, rotated).await;
    let settled = wait_for_vm(&app, "the claim settled", |vm| {
        vm.claim_settled_at.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = alices_vm(&app).await;

    // Assert: still the claimed pool VM, never given up for a cold boot.
    assert!(waiting.assigned_at.is_none(), "{waiting:#?}");
    for vm in [&waiting, &settled, &later] {
        assert_eq!(vm.id, claimed.id);
        assert_eq!(vm.launch_path, LaunchPath::Pool, "{vm:#?}");
        assert_eq!(vm.server_id.as_deref(), Some(server.as_str()));
    }
    assert_eq!(status, StatusCode::OK, "{job}");
    assert!(job["home_volume_id"].is_string(), "{job}");
    assert!(reported.is_success(), "{reported}");
    let deletes = app.fake.find_calls(Method::DELETE, "servers/");
    assert!(
        deletes
            .iter()
            .all(|c| c.path != format!("servers/{server}")),
        "{deletes:#?}"
    );
    assert!(app.creates().iter().all(is_pool_create));
    let events = app.store().recent_events(claimed.id, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("your storage is being created")),
        "{events:#?}"
    );
    assert!(
        events.iter().all(|e| !e.message.contains("did not ask")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_first_claim_without_room_for_the_storage_fails_in_words_and_frees_the_pool_vm() {
    // Arrange: a ready pool VM; the volume quota is full with its boot
    // volume.
    let app = with_storage(30).await;
    let ready = app.fill(1).await;
    let server = ready[0].server_id.clone().unwrap();
    {
        let mut w = app.fake.world();
        w.limits.gigabytes = w.volumes.values().map(|v| v.size as i64).sum();
    }

    // Act
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    let failed = app.web.wait_for("failed", super::LIMIT).await;
    let (_, status, _) = app.answer_of(claimed.id).await;

    // Assert: she reads why; nothing was made; the VM gets no job and its
    // server goes.
    assert_eq!(claimed.launch_path, LaunchPath::Pool);
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("there is no room for your storage: quota exceeded"),
        "{failed:#}"
    );
    assert!(app.fake.volume_creates().is_empty());
    assert_eq!(status, StatusCode::CONFLICT);
    app.wait_for_calls("the claimed server's deletion", |fake| {
        fake.find_calls(Method::DELETE, "servers/")
            .iter()
            .any(|c| c.path == format!("servers/{server}"))
    })
    .await;
}

#[tokio::test]
async fn a_claim_named_a_home_volume_deleted_outside_stackbinder() {
    // Arrange: alice's storage is on record, but someone deleted the
    // volume in the cloud; a ready pool VM.
    let app = with_storage(30).await;
    let alice = GithubId::for_demo(&Login::parse("alice").unwrap());
    app.store()
        .record_home_volume(alice, "deleted-outside", 10, Some("nova"))
        .await
        .unwrap();
    app.fill(1).await;

    // Act
    app.web.launch().await;
    let claimed = alices_vm(&app).await;
    let (_, status, job) = app.answer_of(claimed.id).await;

    // Assert: her VM's job names the new, empty volume the driver made,
    // the disk it will find, not the one that is gone.
    assert_eq!(status, StatusCode::OK, "{job}");
    let home = app.store().home_volume(alice).await.unwrap().unwrap();
    assert_ne!(home.volume_id, "deleted-outside");
    assert_eq!(job["home_volume_id"], home.volume_id, "{job}");
}
