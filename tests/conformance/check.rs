//! `stackbinder check` (the real binary) against the dev cloud: it passes,
//! and it fails, naming the fix, when the flavor or the key pair it is
//! configured with is gone.

use crate::dev::{self, Rest};
use reqwest::Method;
use serde_json::json;
use std::process::{Command, Output};

pub fn check(extra: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackbinder"));
    cmd.arg("check")
        .env_remove("STACKBINDER_CONFIG")
        .env(
            "STACKBINDER_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        )
        .envs(dev::cloud_env());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_check_passes_on_the_dev_cloud() {
    let _one = dev::exclusive().await;
    let out = check(&[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for line in [
        "OK   credentials",
        "OK   image",
        "OK   flavor: sb.small",
        "OK   key pair",
        "OK   security groups: ssh-whitelist, Open-top exist",
        "OK   network",
        "OK   floating IP pool",
        "OK   quotas: room for another VM",
    ] {
        assert!(said.contains(line), "{line:?} missing from:\n{said}");
    }
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_check_fails_when_the_flavor_is_renamed() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    // Nova cannot rename a flavor: an operator deletes it and creates it
    // again under another name.
    let create = |name: &str| json!({"flavor": {"name": name, "ram": 512, "vcpus": 1, "disk": 1}});
    let (status, made) = admin
        .send(
            Method::POST,
            "compute",
            "/flavors",
            Some(create("sb.conformance")),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let id = made["flavor"]["id"].as_str().unwrap().to_owned();
    let env = [("STACKBINDER_CLOUD__FLAVOR", "sb.conformance")];
    let before = check(&env);
    admin
        .send(Method::DELETE, "compute", &format!("/flavors/{id}"), None)
        .await;
    let (_, renamed) = admin
        .send(
            Method::POST,
            "compute",
            "/flavors",
            Some(create("sb.conformance-renamed")),
        )
        .await;
    let after = check(&env);
    let renamed_id = renamed["flavor"]["id"].as_str().unwrap().to_owned();
    admin
        .send(
            Method::DELETE,
            "compute",
            &format!("/flavors/{renamed_id}"),
            None,
        )
        .await;

    assert!(before.status.success(), "{}", text(&before));
    let said = text(&after);
    assert!(!after.status.success(), "{said}");
    assert!(
        said.contains("FAIL flavor: no flavor \"sb.conformance\""),
        "{said}"
    );
    assert!(
        said.contains("sb.conformance-renamed"),
        "the fix lists it: {said}"
    );
    assert!(said.contains("OK   image"), "{said}");
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_check_fails_when_the_key_pair_is_removed() {
    let _one = dev::exclusive().await;
    let user = Rest::connect(dev::CLOUD).await;
    let gone = "/os-keypairs/sb-conformance-key";
    user.send(Method::DELETE, "compute", gone, None).await; // an earlier run's
    let (status, made) = user
        .send(
            Method::POST,
            "compute",
            "/os-keypairs",
            Some(json!({"keypair": {"name": "sb-conformance-key",
                "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHXhVJMZxBUeUcQEarZNnQAwuW8Xwpt6eE11bJeBKXaW conformance"}})),
        )
        .await;
    assert!(matches!(status, 200 | 201), "{status} {made}");
    let env = [("STACKBINDER_CLOUD__KEY_NAME", "sb-conformance-key")];
    let before = check(&env);
    let (status, _) = user
        .send(
            Method::DELETE,
            "compute",
            "/os-keypairs/sb-conformance-key",
            None,
        )
        .await;
    assert!(matches!(status, 202 | 204), "{status}");
    let after = check(&env);

    assert!(before.status.success(), "{}", text(&before));
    let said = text(&after);
    assert!(!after.status.success(), "{said}");
    assert!(
        said.contains("FAIL key pair: no key pair \"sb-conformance-key\""),
        "{said}"
    );
    assert!(said.contains("openstack keypair create"), "{said}");
}
