//! The capacity queue under a class start: with `cloud.max_vms = 100`,
//! 300 students press Launch at once. The cloud must be asked for exactly
//! 100 servers, the other 200 wait with their places in the queue shown,
//! and they start as slots free up, oldest first, none lost.

use crate::helpers::*;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::Value;
use stackbinder::domain::VmState;
use std::collections::BTreeSet;
use tokio::time::Instant;

const STUDENTS: usize = 300;
const SLOTS: usize = 100;

/// Requests of the class in flight at once (300 browsers, 2 cores).
const AT_ONCE: usize = 50;

/// Wait (bounded) until `count` VMs are in `state`.
async fn until_in_state(app: &TestApp, state: VmState, count: usize) {
    let deadline = Instant::now() + 6 * WAIT;
    loop {
        let vms = app.store().list_vms(false).await.unwrap();
        let now = vms.iter().filter(|vm| vm.state == state).count();
        if now >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {count} VMs became {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every student's view of their VM.
async fn views(students: &[Browser]) -> Vec<Value> {
    futures_util::stream::iter(students)
        .map(|s| s.api_vm_json())
        .buffered(AT_ONCE)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_clicks_on_a_hundred_slots_queue_two_hundred_and_lose_none() {
    // Arrange: a class of 300, registered, on a cloud capped at 100 VMs.
    let app = spawn_app_with(TestOptions {
        configure: |c| c.cloud.max_vms = Some(SLOTS as u32),
        ..TestOptions::default()
    })
    .await;
    let students: Vec<Browser> = (0..STUDENTS).map(|_| app.new_browser()).collect();
    futures_util::stream::iter(students.iter().enumerate())
        .for_each_concurrent(AT_ONCE, |(i, s)| async move {
            s.login_registered(&format!("student{i}")).await
        })
        .await;

    // Act: everybody presses Launch at once.
    let launched = join_all(students.iter().map(|s| s.launch(REPO, "", ""))).await;
    for response in &launched {
        assert_is_redirect_to(response, "/VM_status");
    }
    until_in_state(&app, VmState::Ready, SLOTS).await;

    // Assert: 100 servers, 200 in the queue, each shown its own place.
    assert_eq!(
        app.cloud.created().len(),
        SLOTS,
        "servers the cloud was asked for"
    );
    let seen = views(&students).await;
    let queued: Vec<&Value> = seen.iter().filter(|v| v["state"] == "requested").collect();
    assert_eq!(queued.len(), STUDENTS - SLOTS, "launches in the queue");
    let places: BTreeSet<i64> = queued
        .iter()
        .map(|v| {
            v["queue_ahead"]
                .as_i64()
                .expect("a queued VM shows its place")
        })
        .collect();
    assert_eq!(
        places,
        (0..(STUDENTS - SLOTS) as i64).collect(),
        "queue places"
    );
    assert!(
        seen.iter()
            .filter(|v| v["state"] != "requested")
            .all(|v| v["state"] == "ready" && v["queue_ahead"].is_null()),
        "the others are ready and not queued"
    );

    // Act: the ready ones finish and delete their VMs, twice over; the
    // queue moves up each time.
    let mut ready_once = BTreeSet::new();
    for wave in 1..STUDENTS / SLOTS {
        let seen = views(&students).await;
        let ready: Vec<&Browser> = students
            .iter()
            .zip(&seen)
            .filter(|(_, v)| v["state"] == "ready")
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            ready.len(),
            SLOTS,
            "wave {wave}: every slot holds a ready VM"
        );
        ready_once.extend(
            seen.iter()
                .filter(|v| v["state"] == "ready")
                .map(|v| v["id"].to_string()),
        );
        futures_util::stream::iter(ready)
            .for_each_concurrent(AT_ONCE, |s| async move {
                assert_is_redirect_to(&s.delete_vm().await, "/VM_status");
            })
            .await;
        until_in_state(&app, VmState::Ready, SLOTS).await;
        assert_eq!(
            app.cloud.created().len(),
            SLOTS * (wave + 1),
            "wave {wave}: one server per freed slot"
        );
    }

    // Assert: every launch reached ready, none lost on the way.
    let last = views(&students).await;
    ready_once.extend(
        last.iter()
            .filter(|v| v["state"] == "ready")
            .map(|v| v["id"].to_string()),
    );
    assert_eq!(ready_once.len(), STUDENTS, "launches that became ready");
    let vms = app.store().list_vms(true).await.unwrap();
    assert_eq!(vms.len(), STUDENTS, "one VM per student");
    assert!(
        vms.iter().all(|vm| vm.state != VmState::Failed),
        "no launch failed"
    );
}
