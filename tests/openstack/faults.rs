//! Faults the cloud throws at us, and what the user reads.

use crate::fake_openstack::Fault;
use crate::helpers::*;
use axum::http::Method;
use serde_json::json;
use stackbinder::cloud::{Cloud, CloudError, ServerStatus};
use std::time::{Duration, Instant};

fn fault(method: Method, path: &'static str, status: u16, times: u32) -> Fault {
    Fault {
        method,
        path,
        status,
        body: json!({"computeFault": {"code": status, "message": "Unexpected API Error."}}),
        retry_after: None,
        times,
    }
}

#[tokio::test]
async fn a_500_is_retried_and_the_call_succeeds() {
    let env = setup().await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    let before = env.fake.calls().len();
    env.fake.inject(fault(Method::GET, "servers/", 500, 2));

    let server = env
        .cloud
        .get_server(&id)
        .await
        .expect("the third attempt works");

    assert!(server.is_some());
    assert_eq!(env.fake.calls().len() - before, 3);
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let env = setup().await;
    env.cloud.get_server("warm-up").await.unwrap();
    env.fake.inject(Fault {
        retry_after: Some(1),
        ..fault(Method::GET, "servers/", 429, 1)
    });

    let start = Instant::now();
    env.cloud
        .get_server("x")
        .await
        .expect("retried after the wait");

    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_create_that_failed_with_500_is_not_sent_twice() {
    // A 500 may hide a server Nova did create; the driver finds it by its
    // metadata instead of creating a second one.
    let env = setup().await;
    env.fake.inject(fault(Method::POST, "servers", 500, 1));

    let err = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap_err();

    assert!(err.is_transient(), "{err:?}");
    let creates: Vec<_> = env
        .fake
        .find_calls(Method::POST, "servers")
        .into_iter()
        .filter(|c| c.path == "servers")
        .collect();
    assert_eq!(creates.len(), 1);
}

#[tokio::test]
async fn a_409_on_volume_delete_means_busy_and_a_later_try_succeeds() {
    let env = setup_with(|c| c.delete_volume_on_termination = false, false).await;
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    let volume = env.cloud.get_server(&id).await.unwrap().unwrap().volume_ids[0].clone();
    env.cloud.delete_server(&id).await.unwrap();
    while env.cloud.get_server(&id).await.unwrap().is_some() {}
    env.fake.inject(Fault {
        body: json!({"conflictingRequest": {"code": 409, "message": "Volume is detaching"}}),
        ..fault(Method::DELETE, "volumes/", 409, 1)
    });

    assert_eq!(
        env.cloud.delete_volume(&volume).await,
        Err(CloudError::VolumeBusy)
    );
    env.cloud
        .delete_volume(&volume)
        .await
        .expect("the next try works");
    assert_eq!(env.fake.volume_count(), 0);
}

#[tokio::test]
async fn an_error_state_carries_novas_fault_message() {
    let env = setup().await;
    env.fake.world().boot_fault =
        Some("No valid host was found. There are not enough hosts available.".into());
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();

    let mut server = env.cloud.get_server(&id).await.unwrap().unwrap();
    while server.status == ServerStatus::Build {
        server = env.cloud.get_server(&id).await.unwrap().unwrap();
    }

    assert_eq!(server.status, ServerStatus::Error);
    assert_eq!(
        server.fault.as_deref(),
        Some("No valid host was found. There are not enough hosts available.")
    );
}

#[tokio::test]
async fn a_full_project_is_refused_before_anything_is_created() {
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.limits.instances = 20;
        w.extra_instances = 20;
    }

    let err = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap_err();

    assert_eq!(
        err,
        CloudError::QuotaExceeded("this project uses 20 of 20 instances".into())
    );
    assert_eq!(
        err.to_string(),
        "quota exceeded: this project uses 20 of 20 instances"
    );
    assert!(
        !err.is_transient(),
        "the provisioner fails the VM with the message"
    );
    assert_eq!(env.fake.server_count(), 0);
}

#[tokio::test]
async fn too_little_volume_quota_says_what_a_vm_needs() {
    let env = setup().await;
    env.fake.world().limits.gigabytes = 100;

    let err = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "quota exceeded: this project uses 0 of 100 GB of volume storage, and a VM needs 150"
    );
}

#[tokio::test]
async fn novas_own_quota_refusal_is_a_quota_error_too() {
    // Someone else took the last instance between our check and our create.
    let env = setup().await;
    env.fake.inject(Fault {
        body: json!({"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 20 of 20 instances"}}),
        ..fault(Method::POST, "servers", 403, 1)
    });
    let err = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::QuotaExceeded(m) if m.contains("20 of 20 instances")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_exhausted_pool_says_the_cloud_is_out_of_floating_ips() {
    let env = setup().await;
    env.fake.world().pool_free.clear();
    let id = env
        .cloud
        .create_server(&spec(&env.config, "alice"))
        .await
        .unwrap();
    while env.cloud.get_server(&id).await.unwrap().unwrap().status != ServerStatus::Active {}

    let err = env
        .cloud
        .attach_floating_ip(&id, &owner())
        .await
        .unwrap_err();

    assert!(matches!(err, CloudError::NoFloatingIps(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the cloud is out of floating IPs"),
        "{err}"
    );
}

#[tokio::test]
async fn a_cloud_that_is_down_trips_the_breaker_and_is_left_alone() {
    let env = setup().await;
    env.cloud.get_server("warm-up").await.unwrap();
    env.fake.inject(fault(Method::GET, "servers/", 500, 1000));

    // Three calls in a row fail (each after its retries)...
    for _ in 0..3 {
        let err = env.cloud.get_server("x").await.unwrap_err();
        assert!(err.is_transient());
    }
    let after_three = env.fake.calls().len();
    // ...then calls fail at once, without reaching the cloud.
    let err = env.cloud.get_server("x").await.unwrap_err();
    assert!(err.to_string().contains("not calling it"), "{err}");
    assert_eq!(env.fake.calls().len(), after_three);

    // After the cooldown one trial goes out; the cloud is back, so it closes.
    env.fake.world().faults_clear();
    tokio::time::sleep(Duration::from_millis(450)).await;
    env.cloud.get_server("x").await.expect("the cloud is back");
    env.cloud
        .get_server("x")
        .await
        .expect("and the circuit is closed");
}

/// Call until the breaker lets a call through (it refuses at once while
/// open), at most `limit`; the answer of the first call let through.
async fn first_call_let_through(
    env: &Env,
    limit: Duration,
) -> Result<Option<stackbinder::cloud::Server>, CloudError> {
    let deadline = Instant::now() + limit;
    loop {
        match env.cloud.get_server("x").await {
            Err(e) if e.to_string().contains("not calling it") => {
                assert!(
                    Instant::now() < deadline,
                    "the circuit stayed open for {limit:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test]
async fn a_half_open_trial_that_fails_without_an_outage_does_not_keep_the_circuit_open_for_ever() {
    // Keystone is down (500s): three calls fail and open the circuit.
    let env = setup().await;
    env.fake
        .inject(fault(Method::POST, "auth/tokens", 500, 1000));
    for _ in 0..3 {
        let err = env.cloud.get_server("x").await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
    assert!(
        env.cloud
            .get_server("x")
            .await
            .unwrap_err()
            .to_string()
            .contains("not calling it")
    );

    // Keystone is back but refuses the first authentication: the trial
    // after the cooldown fails with a refusal, not an outage.
    env.fake.world().faults_clear();
    env.fake.inject(Fault {
        body: json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}),
        ..fault(Method::POST, "auth/tokens", 401, 1)
    });
    let trial = first_call_let_through(&env, Duration::from_secs(5)).await;
    assert!(
        matches!(trial, Err(CloudError::Rejected(_))),
        "the trial meets the refusal: {trial:?}"
    );

    // The circuit opened again for a cooldown, and the next trial finds
    // the cloud well.
    let next = first_call_let_through(&env, Duration::from_secs(5)).await;
    assert!(next.expect("the cloud is back").is_none());
    env.cloud
        .get_server("x")
        .await
        .expect("and the circuit is closed");
}
