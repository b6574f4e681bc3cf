//! `stackbinder image build` through the OpenStack backend against the
//! fake: what Nova and Glance receive, what the build reports, and that
//! nothing of the build is left behind, whatever the ending.

use crate::fake_openstack::{BASE_IMAGE, FakeOpenStack, KEY};
use crate::helpers::*;
use axum::http::Method;
use serde_json::Value;
use stackbinder::cloud::{META_BUILD_UNTIL, META_IMAGE_BUILD, META_INSTANCE, META_VM};
use stackbinder::cloud_init::render_base_image;
use stackbinder::config::ImageConfig;
use stackbinder::image_build::{BuildError, BuildEvent, Built, Failure, Plan, Timing, build_image};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const OK: &str = "STACKBINDER-IMAGE-BUILD: OK";

fn plan(name: &str) -> Plan {
    Plan::from_config(&ImageConfig::default(), Some(name.into()), None, None).unwrap()
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_millis(10),
        build_timeout: Duration::from_secs(10),
        snapshot_timeout: Duration::from_secs(10),
        teardown_timeout: Duration::from_secs(10),
    }
}

/// The console of a builder that runs the build script and powers off.
fn console(verdict: &str) -> Vec<String> {
    [
        "[    0.000000] Linux version 6.8.0-generic",
        "Cloud-init v. 24.4 running 'modules:final'",
        "stackbinder-build-image: installing jupyter-repo2docker 2026.4.0 into /opt/repo2docker",
        "stackbinder-build-image: pre-building https://github.com/binder-examples/requirements",
        verdict,
        "reboot: Power down",
    ]
    .iter()
    .map(|l| l.to_string())
    .collect()
}

async fn run(
    env: &Env,
    plan: &Plan,
    timing: Timing,
    cancel: &CancellationToken,
) -> (Result<Built, Failure>, Vec<BuildEvent>) {
    let mut seen = Vec::new();
    let mut record = |p: BuildEvent| seen.push(p);
    let result = build_image(&env.cloud, &owner(), plan, &timing, &mut record, cancel).await;
    (result, seen)
}

fn console_lines(seen: &[BuildEvent]) -> Vec<String> {
    seen.iter()
        .filter_map(|p| match p {
            BuildEvent::Console(l) => Some(l.clone()),
            BuildEvent::Step(_) => None,
        })
        .collect()
}

/// A builder that runs for ever: it never powers off, and its console
/// stops after three lines, before the verdict.
fn never_ending_build(env: &Env) {
    let mut w = env.fake.world();
    w.builder_console = console(OK);
    w.builder_powers_off = false;
    w.builder_console.truncate(3);
}

/// Until the build has read the builder's console `n` times (each read is
/// a `POST …/action`, `os-getConsoleOutput`).
async fn console_reads(fake: &FakeOpenStack, n: usize) {
    while fake.find_calls(Method::POST, "action").len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Only the two images the fake started with are left, and no server or
/// volume.
fn assert_nothing_left(env: &Env) {
    assert_eq!(env.fake.server_count(), 0, "the builder is deleted");
    assert_eq!(env.fake.volume_count(), 0, "no volume is left");
    let names: Vec<Value> = env
        .fake
        .images()
        .iter()
        .map(|i| i["name"].clone())
        .collect();
    assert_eq!(
        names,
        ["stackbinder-snapshot", BASE_IMAGE],
        "no half-made image"
    );
}

#[tokio::test]
async fn a_build_boots_the_base_image_with_the_rendered_cloud_config_and_keeps_only_the_image() {
    // Arrange
    let env = setup().await;
    env.fake.world().builder_console = console(OK);
    let plan = plan("snap-2026");

    // Act
    let (result, seen) = run(&env, &plan, timing(), &CancellationToken::new()).await;

    // Assert: the builder Nova was asked for.
    let built = result.expect("the build succeeds");
    assert!(built.left_behind.is_empty(), "{:?}", built.left_behind);
    let creates: Vec<_> = env
        .fake
        .find_calls(Method::POST, "servers")
        .into_iter()
        .filter(|c| c.path == "servers")
        .collect();
    assert_eq!(creates.len(), 1);
    let s = &creates[0].body.as_ref().unwrap()["server"];
    let (base_id, private_id, sg_ids) = {
        let w = env.fake.world();
        (
            w.images[1]["id"].clone(),
            w.networks[0]["id"].clone(),
            w.sgs_named(&["ssh-whitelist", "Open-top"]),
        )
    };
    assert_eq!(s["name"], "snap-2026-builder");
    assert_eq!(s["imageRef"], base_id, "boots the base image by id");
    assert!(
        s.get("block_device_mapping_v2").is_none(),
        "boots from the image, not from a volume: {s}"
    );
    assert_eq!(s["flavorRef"], "4", "image.builder_flavor m1.large, by id");
    assert_eq!(s["networks"][0]["uuid"], private_id);
    assert_eq!(s["key_name"], KEY);
    let groups: Vec<Value> = s["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(groups, sg_ids);
    assert_eq!(s["metadata"][META_IMAGE_BUILD], "snap-2026");
    assert!(
        s["metadata"].get(META_VM).is_none(),
        "not a VM for the reconciler"
    );
    let user_data = env.fake.user_data(0);
    assert_eq!(user_data, render_base_image(&ImageConfig::default(), &[]));
    assert_eq!(user_data, plan.user_data);

    // The snapshot Nova was asked for, and the image it made.
    let snapshots: Vec<_> = env
        .fake
        .find_calls(Method::POST, "action")
        .into_iter()
        .filter_map(|c| c.body.and_then(|b| b.get("createImage").cloned()))
        .collect();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0]["name"], "snap-2026");
    let images = env.fake.images();
    let image = images
        .iter()
        .find(|i| i["id"] == built.image_id.as_str())
        .expect("the new image is in Glance");
    assert_eq!(image["name"], "snap-2026");
    assert_eq!(image["status"], "active");
    assert_eq!(built.name, "snap-2026");

    // Every console line was shown once, in order; the builder is gone.
    assert_eq!(console_lines(&seen), console(OK));
    assert_eq!(env.fake.server_count(), 0);
    assert_eq!(env.fake.volume_count(), 0);
    assert_eq!(images.len(), 3);
}

#[tokio::test]
async fn a_failed_marker_fails_the_build_with_its_reason_and_snapshots_nothing() {
    // Arrange
    let env = setup().await;
    env.fake.world().builder_console = console(
        "STACKBINDER-IMAGE-BUILD: FAILED: pre-building https://github.com/binder-examples/requirements",
    );

    // Act
    let (result, seen) = run(&env, &plan("snap"), timing(), &CancellationToken::new()).await;

    // Assert
    let failure = result.expect_err("the build fails");
    assert_eq!(
        failure.error,
        BuildError::BuildFailed(
            "pre-building https://github.com/binder-examples/requirements".into()
        )
    );
    assert!(failure.left_behind.is_empty());
    assert!(
        failure
            .to_string()
            .contains("everything the build created was deleted"),
        "{failure}"
    );
    let snapshots = env
        .fake
        .find_calls(Method::POST, "action")
        .into_iter()
        .filter(|c| {
            c.body
                .as_ref()
                .is_some_and(|b| b.get("createImage").is_some())
        })
        .count();
    assert_eq!(snapshots, 0, "a failed build is not snapshotted");
    assert!(console_lines(&seen).iter().any(|l| l.contains("FAILED")));
    assert_nothing_left(&env);
}

#[tokio::test]
async fn a_builder_that_powers_off_without_the_ok_marker_has_failed() {
    // Arrange: cloud-init died before the build script could say anything.
    let env = setup().await;
    env.fake.world().builder_console = vec!["Cloud-init v. 24.4 finished with errors".into()];

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &CancellationToken::new()).await;

    // Assert
    assert_eq!(
        result.expect_err("no OK, no image").error,
        BuildError::NoVerdict
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn a_builder_that_never_powers_off_times_out_and_is_deleted() {
    // Arrange
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.builder_console = vec!["stackbinder-build-image: pre-building repositories".into()];
        w.builder_powers_off = false;
    }
    let timing = Timing {
        build_timeout: Duration::from_millis(300),
        ..timing()
    };

    // Act
    let (result, seen) = run(&env, &plan("snap"), timing, &CancellationToken::new()).await;

    // Assert
    let failure = result.expect_err("the build times out");
    assert!(
        matches!(failure.error, BuildError::BuildTimedOut(_)),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("image.build_timeout_minutes"),
        "{failure}"
    );
    assert!(
        seen.iter()
            .any(|p| matches!(p, BuildEvent::Step(s) if s.contains("deleting the builder")))
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn an_interrupted_build_deletes_the_builder() {
    // Arrange: a build that would run for ever, interrupted once the
    // builder's console has been read twice.
    let env = setup().await;
    never_ending_build(&env);
    let cancel = CancellationToken::new();
    let interrupt = {
        let (fake, cancel) = (env.fake.clone(), cancel.clone());
        tokio::spawn(async move {
            console_reads(&fake, 2).await;
            cancel.cancel();
        })
    };

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &cancel).await;

    // Assert
    interrupt.await.unwrap();
    assert_eq!(
        result.expect_err("interrupted").error,
        BuildError::Interrupted
    );
    assert!(
        !env.fake.find_calls(Method::DELETE, "servers/").is_empty(),
        "the builder was asked to go"
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn an_interruption_while_the_snapshot_saves_deletes_the_half_made_image_too() {
    // Arrange: the snapshot would stay `saving` for a long time, and Nova's
    // answer to createImage comes well after the image exists: the
    // interruption lands between the two.
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.builder_console = console(OK);
        w.snapshot_polls = 1_000_000;
        w.snapshot_reply_delay = Duration::from_millis(300);
    }
    let cancel = CancellationToken::new();
    let interrupt = {
        let (fake, cancel) = (env.fake.clone(), cancel.clone());
        tokio::spawn(async move {
            while fake.world().images.len() < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cancel.cancel();
        })
    };

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &cancel).await;

    // Assert
    interrupt.await.unwrap();
    assert_eq!(
        result.expect_err("interrupted").error,
        BuildError::Interrupted
    );
    assert_eq!(
        env.fake.find_calls(Method::DELETE, "images/").len(),
        1,
        "the half-made image is deleted"
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn a_snapshot_that_glance_kills_fails_the_build_and_is_deleted() {
    // Arrange
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.builder_console = console(OK);
        w.snapshot_fails = true;
    }

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &CancellationToken::new()).await;

    // Assert
    assert_eq!(
        result.expect_err("no active image").error,
        BuildError::SnapshotFailed("killed".into())
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn a_builder_that_goes_to_error_fails_with_novas_fault_and_is_deleted() {
    // Arrange
    let env = setup().await;
    env.fake.world().boot_fault = Some("No valid host was found.".into());

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &CancellationToken::new()).await;

    // Assert
    assert_eq!(
        result.expect_err("the builder failed").error,
        BuildError::BuilderError("No valid host was found.".into())
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn a_missing_base_image_is_refused_with_the_key_to_fix() {
    // Arrange
    let env = setup().await;
    let plan = Plan::from_config(
        &ImageConfig::default(),
        Some("snap".into()),
        Some("no-such-base".into()),
        None,
    )
    .unwrap();

    // Act
    let (result, _) = run(&env, &plan, timing(), &CancellationToken::new()).await;

    // Assert
    let message = result.expect_err("nothing to boot").to_string();
    assert!(message.contains("no image \"no-such-base\""), "{message}");
    assert!(
        message.contains("image.base_image (or --base-image)"),
        "{message}"
    );
    assert_nothing_left(&env);
}

#[tokio::test]
async fn the_image_build_command_prints_the_new_image_id_and_its_config_line() {
    // Arrange
    let env = setup().await;
    env.fake.world().builder_console = console(OK);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[cloud]\nbackend = \"openstack\"\ncloud = \"fake\"\nkey_name = \"{KEY}\"\n\
             [provision]\npoll_interval_ms = 20\n[image]\nbase_image = \"{BASE_IMAGE}\"\n\
             [database]\nurl = \"sqlite://{}\"\n",
            dir.path().join("stackbinder.db").display()
        ),
    )
    .unwrap();

    // Act
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["--config", config.to_str().unwrap()])
        .args([
            "image",
            "build",
            "--name",
            "snap-cli",
            "--flavor",
            "m1.medium",
        ])
        .env("OS_CLIENT_CONFIG_FILE", &env.clouds_yaml)
        .env_remove("OS_CLOUD")
        .output()
        .await
        .expect("the binary runs");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let images = env.fake.images();
    let new = images
        .iter()
        .find(|i| i["name"] == "snap-cli")
        .expect("the image is in Glance");
    let id = new["id"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("cloud.image = \"{id}\"")),
        "{stdout}"
    );
    assert!(
        stdout.contains("    | STACKBINDER-IMAGE-BUILD: OK"),
        "{stdout}"
    );
    let create = &env.fake.find_calls(Method::POST, "servers")[0];
    assert_eq!(
        create.body.as_ref().unwrap()["server"]["flavorRef"],
        "3",
        "--flavor m1.medium wins over image.builder_flavor"
    );
    assert!(!stdout.contains("secret-password") && !stderr.contains("secret-password"));
    assert_eq!(env.fake.server_count(), 0);
}

#[tokio::test]
async fn image_build_finds_its_builder_when_the_boot_answer_is_lost() {
    // Arrange: Nova boots the builder, but its answer is lost (504).
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.builder_console = console(OK);
        w.lose_builder_answers = 1;
    }

    // Act
    let (result, seen) = run(
        &env,
        &plan("snap-lost"),
        timing(),
        &CancellationToken::new(),
    )
    .await;

    // Assert: the build found the builder by its metadata and went on,
    // with one boot request, and the builder is gone.
    let built = result.unwrap_or_else(|f| panic!("the build failed: {f} ({seen:?})"));
    assert!(built.left_behind.is_empty(), "{:?}", built.left_behind);
    let creates: Vec<_> = env
        .fake
        .find_calls(Method::POST, "servers")
        .into_iter()
        .filter(|c| c.path == "servers")
        .collect();
    assert_eq!(creates.len(), 1, "booted once");
    let metadata = &creates[0].body.as_ref().unwrap()["server"]["metadata"];
    assert_eq!(metadata[META_INSTANCE], owner().as_str());
    let until = metadata[META_BUILD_UNTIL].as_str().expect("a deadline");
    assert!(
        chrono::DateTime::parse_from_rfc3339(until).is_ok(),
        "{until}"
    );
    assert!(
        seen.iter()
            .any(|p| matches!(p, BuildEvent::Step(s) if s.contains("found the builder"))),
        "{seen:?}"
    );
    assert_eq!(env.fake.server_count(), 0, "the builder is deleted");
}

#[tokio::test]
async fn deleting_the_builder_keeps_a_volume_someone_else_attached_to_it() {
    // Arrange: a build that would run for ever; once its builder runs, an
    // operator attaches a volume to it, then the build is interrupted.
    let env = setup().await;
    never_ending_build(&env);
    let cancel = CancellationToken::new();
    let interrupt = {
        let (fake, cancel) = (env.fake.clone(), cancel.clone());
        tokio::spawn(async move {
            console_reads(&fake, 1).await;
            let builder = fake.world().servers.keys().next().unwrap().clone();
            let operators = fake.attach_operator_volume(&builder);
            cancel.cancel();
            operators
        })
    };

    // Act
    let (result, _) = run(&env, &plan("snap"), timing(), &cancel).await;

    // Assert: the builder boots from an image and has no volume of its
    // own, so the attached one is not the build's to delete.
    let operators = interrupt.await.unwrap();
    assert_eq!(
        result.expect_err("interrupted").error,
        BuildError::Interrupted
    );
    assert_eq!(env.fake.server_count(), 0, "the builder is deleted");
    assert!(env.fake.world().volumes.contains_key(&operators));
    assert!(env.fake.find_calls(Method::DELETE, "volumes").is_empty());
}
