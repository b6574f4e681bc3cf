//! `GET /api/vm/assignment` through the real router: a VM booted for its
//! owner gets its job at once; a VM without one (as a warm-pool VM) is
//! held until it is assigned, told 204 when the hold ends, 409 once it is
//! being deleted; a wrong secret gets 401; and once a rotated secret has
//! been used, the boot secret acts no more.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::cloud::simulated::Timings;
use stackbinder::cloud_init::Assignment;
use stackbinder::domain::VmId;
use stackbinder::provision::DeleteReason;
use std::num::NonZeroU64;
use std::time::Duration;

const BOOT_SECRET: &str = "boot-secret-5d1c2e0f9b7a";
const NEW_SECRET: &str = "rotated-secret-8e4b6a2c1d3f";

/// An app whose simulated VMs never boot (the test speaks for them), its
/// driver stepped by hand, a request without a job held for 1 s
/// (`short_hold`) or for 300 s (a claim or a deletion ends it).
async fn app_holding(short_hold: bool) -> TestApp {
    let app = spawn_app_with(TestOptions {
        drive_in_background: false,
        timings: Timings {
            boot: Duration::from_secs(3600),
            ..Timings::quick()
        },
        configure: if short_hold {
            |c| c.provision.assignment_hold_seconds = NonZeroU64::new(1).unwrap()
        } else {
            |c| c.provision.assignment_hold_seconds = NonZeroU64::new(300).unwrap()
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("sam").await;
    app
}

/// A launch recorded but never driven, given a boot secret and no job:
/// what a warm-pool VM is until it is claimed.
async fn a_vm_without_a_job(app: &TestApp) -> VmId {
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let id: VmId = app.api_vm_json().await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hash = stackbinder::secret::hash(BOOT_SECRET);
    app.store().set_boot_secret(id, &hash, None).await.unwrap();
    id
}

async fn ask(app: &TestApp, vm: VmId, secret: &str) -> (StatusCode, Option<Assignment>) {
    let response = plain_client()
        .get(app.url("/api/vm/assignment"))
        .query(&[("vm", vm.to_string())])
        .bearer_auth(secret)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    (status, Some(response.json().await.unwrap()))
}

/// Until the server holds a request of `vm` (a condition, polled).
async fn until_held(app: &TestApp, vm: VmId) {
    for _ in 0..500 {
        if app.provisioner().held_assignment_requests(vm) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request of {vm} was never held");
}

fn job_for_sam(token: &str) -> Assignment {
    Assignment {
        login: "sam".into(),
        repo: REPO.into(),
        git_ref: "main".into(),
        url_path: String::new(),
        jupyter_token: token.into(),
        gpu: false,
        home_volume_id: None,
        callback_secret: None,
    }
}

async fn report(app: &TestApp, vm: VmId, secret: &str, seq: i64) -> StatusCode {
    let body = json!({"vm": vm, "seq": seq, "phase": "building", "log": ["a line"]});
    post_callback(app, Some(secret), body.to_string())
        .await
        .status()
}

#[tokio::test]
async fn a_vm_booted_for_its_owner_gets_its_job_at_once() {
    let app = app_holding(false).await;
    assert_is_redirect_to(&app.launch(REPO, "main", "lab").await, "/VM_status");
    app.step().await;
    let boot = app.boot_data(0);
    assert_eq!(boot.assignment_url.as_str(), app.url("/api/vm/assignment"));

    let (status, job) = ask(&app, boot.vm_id, &boot.callback_secret).await;

    assert_eq!(status, StatusCode::OK);
    let job = job.unwrap();
    let vm = app.store().vm(boot.vm_id).await.unwrap().unwrap();
    assert_eq!(
        job,
        Assignment {
            url_path: "lab".into(),
            ..job_for_sam(&vm.jupyter_token)
        }
    );
}

#[tokio::test]
async fn a_held_request_is_answered_with_the_rotated_secret_once_the_vm_is_claimed() {
    let app = app_holding(false).await;
    let vm = a_vm_without_a_job(&app).await;
    let asking = {
        let app_url = app.url("/api/vm/assignment");
        tokio::spawn(async move {
            plain_client()
                .get(app_url)
                .query(&[("vm", vm.to_string())])
                .bearer_auth(BOOT_SECRET)
                .send()
                .await
                .unwrap()
        })
    };
    until_held(&app, vm).await;

    // Act: the claim, as the pool's does it.
    let job = job_for_sam("tok");
    let assigned = app.store().assign_vm(vm, &job, Some(NEW_SECRET)).await;
    assert!(assigned.unwrap());
    app.provisioner().assignment_ready(vm);

    // Assert: the held request has the job, with the new secret.
    let response = asking.await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let answered: Assignment = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answered,
        Assignment {
            callback_secret: Some(NEW_SECRET.into()),
            ..job
        }
    );
}

#[tokio::test]
async fn the_boot_secret_stops_acting_once_the_rotated_one_is_used() {
    let app = app_holding(false).await;
    let vm = a_vm_without_a_job(&app).await;
    let job = job_for_sam("tok");
    assert!(
        app.store()
            .assign_vm(vm, &job, Some(NEW_SECRET))
            .await
            .unwrap()
    );

    // Until the VM uses its new secret, the boot secret may fetch the job
    // (that is how the VM learns the new one) but never report.
    let (status, answered) = ask(&app, vm, BOOT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answered.unwrap().callback_secret.as_deref(),
        Some(NEW_SECRET)
    );
    assert_eq!(
        report(&app, vm, BOOT_SECRET, 1).await,
        StatusCode::UNAUTHORIZED
    );

    // The VM uses the new secret: the job comes without a secret in it...
    let (status, answered) = ask(&app, vm, NEW_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answered.unwrap().callback_secret, None);

    // ...and the boot secret is refused from then on, everywhere.
    assert_eq!(ask(&app, vm, BOOT_SECRET).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        report(&app, vm, BOOT_SECRET, 1).await,
        StatusCode::UNAUTHORIZED
    );
    // (Authenticated: a launch that is not booting yet refuses reports.)
    assert_eq!(report(&app, vm, NEW_SECRET, 1).await, StatusCode::CONFLICT);
    let stored: Option<String> = sqlx_scalar(&app, vm, "delivered_secret").await;
    assert_eq!(stored, None, "the delivered secret is forgotten once used");
}

/// One text column of a VM's row, read on whichever store the test runs.
async fn sqlx_scalar(app: &TestApp, vm: VmId, column: &str) -> Option<String> {
    let sql = format!("SELECT {column} FROM vms WHERE id = $1");
    match app.store().backend() {
        stackbinder::store::Backend::Sqlite(pool) => sqlx::query_scalar(&sql)
            .bind(vm)
            .fetch_one(pool)
            .await
            .unwrap(),
        stackbinder::store::Backend::Postgres(pool) => sqlx::query_scalar(&sql)
            .bind(vm)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn a_vm_without_a_job_is_told_to_ask_again_when_the_hold_ends() {
    let app = app_holding(true).await;
    let vm = a_vm_without_a_job(&app).await;

    let (status, job) = ask(&app, vm, BOOT_SECRET).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(job, None);
    assert_eq!(app.provisioner().held_assignment_requests(vm), 0);
}

#[tokio::test]
async fn a_vm_deleted_while_it_waits_is_told_409() {
    let app = app_holding(false).await;
    let vm = a_vm_without_a_job(&app).await;
    let asking = {
        let url = app.url("/api/vm/assignment");
        tokio::spawn(async move {
            plain_client()
                .get(url)
                .query(&[("vm", vm.to_string())])
                .bearer_auth(BOOT_SECRET)
                .send()
                .await
                .unwrap()
        })
    };
    until_held(&app, vm).await;

    let record = app.store().vm(vm).await.unwrap().unwrap();
    let deleted = app
        .provisioner()
        .delete(&record, DeleteReason::Owner, "the test")
        .await;
    assert!(deleted.unwrap());

    let response = asking.await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(ask(&app, vm, BOOT_SECRET).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_vm_gets_401_and_nothing_else() {
    let app = app_holding(false).await;
    let vm = a_vm_without_a_job(&app).await;
    let assigned = app.store().assign_vm(vm, &job_for_sam("tok"), None).await;
    assert!(assigned.unwrap());

    for (vm, secret) in [(vm, "wrong"), (vm, ""), (VmId::new(), BOOT_SECRET)] {
        let response = plain_client()
            .get(app.url("/api/vm/assignment"))
            .query(&[("vm", vm.to_string())])
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{secret:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("tok"), "{body}");
    }
    let unsigned = plain_client()
        .get(app.url("/api/vm/assignment"))
        .query(&[("vm", vm.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ask(&app, vm, BOOT_SECRET).await.0, StatusCode::OK);
}
