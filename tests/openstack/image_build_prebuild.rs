//! `stackbinder image build --prebuild` through the OpenStack backend
//! against the fake: the builder Nova boots carries the pinned
//! repositories of `[pool] repos` as JSON data, with the script that
//! builds them and the namer, and a pinned repository that fails fails the
//! build with its name.

use crate::fake_openstack::FakeOpenStack;
use crate::helpers::*;
use stackbinder::cloud_init::{IMAGE_DATA_PATH, IMAGE_NAME_PATH, IMAGE_PINNED_PATH};
use stackbinder::config::{ImageConfig, PinnedRepoConfig};
use stackbinder::domain::{GitRef, RepoSpec};
use stackbinder::image_build::{BuildError, Plan, Timing, build_image};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const COURSE: &str = "https://github.com/my-org/course";

fn pinned() -> Vec<PinnedRepoConfig> {
    vec![PinnedRepoConfig {
        repo: RepoSpec::parse(COURSE).unwrap(),
        git_ref: GitRef::parse("week-3").unwrap(),
    }]
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_millis(10),
        build_timeout: Duration::from_secs(10),
        snapshot_timeout: Duration::from_secs(10),
        teardown_timeout: Duration::from_secs(10),
    }
}

/// The files the user data Nova was given writes, by path.
fn written(fake: &FakeOpenStack) -> std::collections::BTreeMap<String, String> {
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&fake.user_data(0)).unwrap();
    config["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_prebuild_builder_is_given_the_pinned_repositories_as_data_and_names_a_failing_one() {
    // Arrange: the builder's script fails at the pinned repository.
    let env = setup().await;
    let failed = format!("resolving week-3 of {COURSE}");
    env.fake.world().builder_console = vec![
        "Cloud-init v. 24.4 running 'modules:final'".into(),
        format!("STACKBINDER-IMAGE-BUILD: FAILED: {failed}"),
        "reboot: Power down".into(),
    ];
    let image = ImageConfig::default();
    let plan = Plan::from_config(&image, Some("course".into()), None, None)
        .unwrap()
        .prebuilding(&image, &pinned());

    // Act
    let result = build_image(
        &env.cloud,
        &owner(),
        &plan,
        &timing(),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await;

    // Assert: what Nova was given.
    let files = written(&env.fake);
    let settings: serde_json::Value = serde_json::from_str(&files[IMAGE_DATA_PATH]).unwrap();
    assert_eq!(
        settings["pinned"],
        serde_json::json!([{ "repo": COURSE, "ref": "week-3" }])
    );
    assert!(files[IMAGE_PINNED_PATH].contains("build_pinned()"));
    assert!(files[IMAGE_NAME_PATH].contains("def image_name"));
    // And how it ended.
    let failure = result.expect_err("the build fails");
    assert_eq!(failure.error, BuildError::BuildFailed(failed));
    assert!(failure.left_behind.is_empty());
    assert_eq!(env.fake.server_count(), 0);
}
