//! `stackbinder image build` on the simulated cloud: the orchestration with
//! each ending, and the real binary (including Ctrl-C).

use stackbinder::cloud::ImageStatus;
use stackbinder::cloud::simulated::{Op, Scenario, SimulatedCloud, Timings};
use stackbinder::cloud_init::render_base_image;
use stackbinder::config::ImageConfig;
use stackbinder::image_build::{BuildError, BuildEvent, Built, Failure, Plan, Timing, build_image};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

fn timing() -> Timing {
    Timing {
        poll: Duration::from_millis(20),
        build_timeout: Duration::from_secs(10),
        snapshot_timeout: Duration::from_secs(10),
        teardown_timeout: Duration::from_secs(10),
    }
}

fn plan() -> Plan {
    Plan::from_config(&ImageConfig::default(), Some("snap".into()), None, None).unwrap()
}

async fn run(
    cloud: &SimulatedCloud,
    timing: Timing,
    cancel: &CancellationToken,
) -> (Result<Built, Failure>, Vec<BuildEvent>) {
    let mut seen = Vec::new();
    let mut record = |p: BuildEvent| seen.push(p);
    let owner = stackbinder::cloud::InstallationId::from_stored("1mage0wner".into());
    let result = build_image(cloud, &owner, &plan(), &timing, &mut record, cancel).await;
    (result, seen)
}

fn cloud() -> SimulatedCloud {
    SimulatedCloud::new(Timings::quick(), 3)
}

#[tokio::test]
async fn a_simulated_build_leaves_one_active_image_and_no_builder() {
    // Arrange
    let cloud = cloud();

    // Act
    let (result, seen) = run(&cloud, timing(), &CancellationToken::new()).await;

    // Assert
    let built = result.expect("the build succeeds");
    assert!(built.left_behind.is_empty());
    let images = cloud.images();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].id, built.image_id);
    assert_eq!(images[0].name, "snap");
    assert_eq!(images[0].status, ImageStatus::Active);
    assert_eq!(cloud.server_count(), 0, "the builder is deleted");
    assert_eq!(cloud.volume_count(), 0);
    let builders = cloud.builders();
    assert_eq!(builders.len(), 1);
    assert_eq!(
        builders[0].user_data,
        render_base_image(&ImageConfig::default(), &[])
    );
    assert_eq!(builders[0].image, ImageConfig::default().base_image);
    assert!(
        seen.contains(&BuildEvent::Console(
            "stackbinder-build-image: pre-building https://github.com/binder-examples/requirements"
                .into()
        ))
    );
    assert!(seen.contains(&BuildEvent::Console("STACKBINDER-IMAGE-BUILD: OK".into())));
}

#[tokio::test]
async fn a_failing_simulated_build_reports_its_step_and_leaves_nothing() {
    // Arrange
    let cloud = cloud();
    cloud.push_scenario(Scenario::ImageBuildFails("installing packages".into()));

    // Act
    let (result, _) = run(&cloud, timing(), &CancellationToken::new()).await;

    // Assert
    assert_eq!(
        result.expect_err("the build fails").error,
        BuildError::BuildFailed("installing packages".into())
    );
    assert_eq!(cloud.calls(Op::CreateImage), 0);
    assert!(cloud.images().is_empty());
    assert_eq!(cloud.server_count(), 0);
}

#[tokio::test]
async fn a_hanging_simulated_build_times_out_and_leaves_nothing() {
    // Arrange
    let cloud = cloud();
    cloud.push_scenario(Scenario::ImageBuildHangs);
    let timing = Timing {
        build_timeout: Duration::from_millis(800),
        ..timing()
    };

    // Act
    let (result, _) = run(&cloud, timing, &CancellationToken::new()).await;

    // Assert
    assert!(matches!(
        result.expect_err("the build times out").error,
        BuildError::BuildTimedOut(_)
    ));
    assert_eq!(cloud.server_count(), 0);
}

#[tokio::test]
async fn a_killed_simulated_snapshot_is_deleted_with_the_builder() {
    // Arrange
    let cloud = cloud();
    cloud.push_scenario(Scenario::SnapshotFails);

    // Act
    let (result, _) = run(&cloud, timing(), &CancellationToken::new()).await;

    // Assert
    assert_eq!(
        result.expect_err("the snapshot fails").error,
        BuildError::SnapshotFailed("killed".into())
    );
    assert!(cloud.images().is_empty());
    assert_eq!(cloud.server_count(), 0);
}

#[tokio::test]
async fn a_cancelled_simulated_build_deletes_the_builder_through_a_flaky_cloud() {
    // Arrange: the first deletion attempts meet an outage.
    let cloud = cloud();
    cloud.push_scenario(Scenario::ImageBuildHangs);
    cloud.fail_next(Op::DeleteServer, 2);
    let cancel = CancellationToken::new();
    let interrupt = {
        let (cloud, cancel) = (cloud.clone(), cancel.clone());
        tokio::spawn(async move {
            while cloud.calls(Op::ConsoleOutput) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cancel.cancel();
        })
    };

    // Act
    let (result, seen) = run(&cloud, timing(), &cancel).await;

    // Assert
    interrupt.await.unwrap();
    assert_eq!(
        result.expect_err("interrupted").error,
        BuildError::Interrupted
    );
    assert_eq!(cloud.calls(Op::DeleteServer), 3, "two outages, then done");
    assert_eq!(cloud.server_count(), 0);
    assert!(
        seen.iter()
            .any(|p| matches!(p, BuildEvent::Step(s) if s.contains("deleted")))
    );
}

/// The binary, with its database (which holds the installation id the
/// builder carries) in `dir`.
fn binary(dir: &tempfile::TempDir) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"));
    let db = dir.path().join("stackbinder.db");
    command
        .env_remove("STACKBINDER_CONFIG")
        .env(
            "STACKBINDER_DATABASE__URL",
            format!("sqlite://{}", db.display()),
        )
        .env("STACKBINDER_CLOUD__BACKEND", "simulated")
        .env("STACKBINDER_PROVISION__POLL_INTERVAL_MS", "50")
        // The timings below as they are played, not scaled.
        .env("STACKBINDER_SIMULATOR__TIME_SCALE", "1")
        .env("STACKBINDER_SIMULATOR__BOOT_SECONDS", "0.2")
        .env("STACKBINDER_SIMULATOR__DELETE_SECONDS", "0.2");
    command
}

#[tokio::test]
async fn the_image_build_command_prints_the_new_image_id_on_the_simulated_cloud() {
    // Act
    let dir = tempfile::tempdir().unwrap();
    let out = binary(&dir)
        .env("STACKBINDER_SIMULATOR__BUILD_SECONDS", "0.5")
        .args(["image", "build", "--name", "course-2026"])
        .output()
        .await
        .expect("the binary runs");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("    | STACKBINDER-IMAGE-BUILD: OK"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("cloud.image = \""))
        .unwrap_or_else(|| panic!("no config line in {stdout}"));
    let id = line
        .trim()
        .trim_start_matches("cloud.image = \"")
        .trim_end_matches('"');
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{line}");
    assert!(
        stdout.contains(&format!("image \"course-2026\" is active: {id}")),
        "{stdout}"
    );
}

#[tokio::test]
async fn ctrl_c_stops_the_image_build_command_which_cleans_up_and_fails() {
    // Arrange: a build that takes a minute.
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary(&dir)
        .env("STACKBINDER_SIMULATOR__BUILD_SECONDS", "60")
        .args(["image", "build"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = stdout.next_line().await.unwrap() {
        let booted = line.contains("builder is ACTIVE");
        seen.push(line);
        if booted {
            break;
        }
    }

    // Act: SIGINT, as Ctrl-C in a terminal sends.
    let pid = child.id().expect("still running").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("it stops soon")
        .unwrap();

    // Assert
    while let Some(line) = stdout.next_line().await.unwrap() {
        seen.push(line);
    }
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    let seen = seen.join("\n");
    assert!(!status.success(), "{seen}");
    assert!(
        seen.contains("==> builder") && seen.contains("deleted"),
        "{seen}"
    );
    assert!(!seen.contains("cloud.image = "), "{seen}");
    assert!(
        stderr.contains("error: interrupted; everything the build created was deleted"),
        "{stderr}"
    );
}

#[tokio::test]
async fn image_build_prebuild_bakes_the_pinned_repositories_and_needs_some() {
    // Arrange: one course repository pinned at a branch.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[pool]\nrepos = [{ repo = \"https://github.com/my-org/course\", ref = \"week-3\" }]\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();

    // Act
    let out = binary(&dir)
        .env("STACKBINDER_SIMULATOR__BUILD_SECONDS", "0.5")
        .arg("--config")
        .arg(&config)
        .args(["image", "build", "--prebuild", "--name", "course"])
        .output()
        .await
        .expect("the binary runs");
    let refused = binary(&dir)
        .arg("--config")
        .arg(&empty)
        .args(["image", "build", "--prebuild"])
        .output()
        .await
        .expect("the binary runs");

    // Assert: the builder was given the pinned repository, and said so.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "prebuilding https://github.com/my-org/course at week-3 into the image",
        "    | stackbinder-build-image: resolving week-3 of https://github.com/my-org/course",
        "    | stackbinder-build-image: pre-building https://github.com/my-org/course at week-3",
        "    | STACKBINDER-IMAGE-BUILD: OK",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout}");
    }
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("`[pool] repos`"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&refused.stdout).is_empty(),
        "no builder is booted"
    );
}
