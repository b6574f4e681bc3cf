//! Launch profiles (`[[profiles]]`) end to end on the fake OpenStack: the
//! launch page offers the user's profiles with the room the quota leaves
//! for each, a profile the user may not use is refused, and the chosen
//! profile's flavor, volume size and image reach Nova and Cinder.

use crate::app::web_app::{REPO, WebApp, csrf_from, unescape};
use crate::fake_openstack::{FakeOpenStack, GPU_FLAVOR, GPU_IMAGE};
use crate::helpers::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use stackbinder::cloud::{Cloud, Shape};
use stackbinder::config::{Config, Profiles};
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

/// `standard` (the default) and `big` for everyone, `gpu` for the users of
/// the registration link `gpu_link`.
fn profiles(gpu_link: &str) -> Profiles {
    serde_json::from_value(json!([
        {"name": "standard", "description": "4 cores, 16 GB", "flavor": "m1.large",
         "volume_size_gb": 100},
        {"name": "big", "description": "a big disk", "flavor": "m1.medium",
         "volume_size_gb": 60},
        {"name": "gpu", "description": "one GPU", "flavor": GPU_FLAVOR,
         "volume_size_gb": 120, "image": GPU_IMAGE, "gpu": true, "links": [gpu_link]},
    ]))
    .expect("valid profiles")
}

struct App {
    web: WebApp,
    fake: FakeOpenStack,
    gpu_image_id: String,
}

/// The app on the fake with `profiles`, and alice registered through the
/// configured registration link (labelled "registration link").
async fn spawn(profiles: Profiles, gigabytes: i64) -> App {
    spawn_with(profiles, gigabytes, |_| {}).await
}

/// `spawn`, with more of the configuration changed by `configure`.
async fn spawn_with(
    profiles: Profiles,
    gigabytes: i64,
    configure: impl FnOnce(&mut Config),
) -> App {
    let env = setup().await;
    let gpu_image_id = env.fake.add_image(GPU_IMAGE);
    env.fake.world().limits.gigabytes = gigabytes;
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud = env.config.clone();
    config.profiles = profiles;
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = WebApp::start(config, cloud, "alice", Duration::from_secs(10)).await;
    let fake = env.fake.clone();
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    App {
        web,
        fake,
        gpu_image_id,
    }
}

impl App {
    /// Launch `REPO` with `profile` from the confirmation page.
    async fn launch_with(&self, profile: &str) -> StatusCode {
        let page = self
            .web
            .get(&format!("/VM_start?giturl={REPO}&profile={profile}"))
            .await;
        self.web
            .post(
                "/VM_start",
                &[
                    ("csrf", &csrf_from(&page)),
                    ("giturl", REPO),
                    ("profile", profile),
                ],
            )
            .await
    }

    /// The body of the one `POST /servers` Nova received.
    fn server_request(&self) -> Value {
        let creates: Vec<_> = self
            .fake
            .find_calls(Method::POST, "servers")
            .into_iter()
            .filter(|c| c.path == "servers")
            .collect();
        assert_eq!(creates.len(), 1, "one server asked for");
        creates[0].body.clone().unwrap()["server"].clone()
    }
}

#[tokio::test]
async fn the_launch_page_offers_each_allowed_profile_with_the_room_its_size_has() {
    // Arrange: 250 GB of volume quota: two of 100 GB fit, four of 60 GB.
    let app = spawn(profiles("GPU course"), 250).await;

    // Act
    let page = app.web.get(&format!("/VM_start?giturl={REPO}")).await;

    // Assert
    let standard = offer(&page, "standard");
    assert!(
        standard.contains("checked"),
        "the first is the default: {standard}"
    );
    assert!(standard.contains("m1.large, 100 GB disk"), "{standard}");
    assert!(standard.contains("2 of this size still fit"), "{standard}");
    let big = offer(&page, "big");
    assert!(big.contains("4 of this size still fit"), "{big}");
    assert!(!big.contains("checked"), "{big}");
    assert!(
        !page.contains("value=\"gpu\""),
        "the GPU profile is for another link's users"
    );
}

#[tokio::test]
async fn a_full_quota_says_that_none_of_a_size_fits() {
    // 140 GB of volume quota, 50 in use: no 100 GB volume fits, one of 60.
    let app = spawn(profiles("GPU course"), 140).await;
    app.fake
        .world()
        .volumes
        .insert("other".into(), other_volume(50));

    let page = app.web.get(&format!("/VM_start?giturl={REPO}")).await;

    assert!(
        offer(&page, "standard").contains("none of this size fits in the quota of the project now"),
        "{page}"
    );
    assert!(
        offer(&page, "big").contains("1 of this size still fits"),
        "{page}"
    );
}

#[tokio::test]
async fn the_room_on_the_launch_page_ignored_the_home_volume_of_the_first_launch() {
    // Arrange: 250 GB of volume quota, and alice has no storage yet: her
    // first launch makes 60 GB of it besides the boot volume.
    let app = spawn_with(profiles("GPU course"), 250, |c| {
        c.storage.home_volume_gb = 60
    })
    .await;

    // Act
    let page = app.web.get(&format!("/VM_start?giturl={REPO}")).await;

    // Assert: 190 GB are left once her storage is made.
    assert!(
        offer(&page, "standard").contains("1 of this size still fits"),
        "{page}"
    );
    assert!(
        offer(&page, "big").contains("3 of this size still fit"),
        "{page}"
    );
}

/// A volume of the project that is none of stackbinder's.
fn other_volume(size: u64) -> crate::fake_openstack::FakeVolume {
    crate::fake_openstack::FakeVolume {
        id: "other".into(),
        size,
        status: "available".into(),
        server_id: None,
        snapshots: 0,
        metadata: Default::default(),
        name: "theirs".into(),
        availability_zone: "nova".into(),
        volume_type: "__DEFAULT__".into(),
        detach_polls: 0,
        attaching_to: None,
    }
}

#[tokio::test]
async fn a_profile_the_user_may_not_use_is_refused_with_a_clear_message() {
    let app = spawn(profiles("GPU course"), 4000).await;

    // The link to it says so, and so does a link to an unknown one.
    for (profile, says) in [
        ("gpu", "The launch profile \"gpu\" is not open to you"),
        ("huge", "no launch profile \"huge\""),
    ] {
        let (status, page) = app
            .web
            .browser
            .get_page(&format!("/VM_start?giturl={REPO}&profile={profile}"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(unescape(&page).contains(says), "{page}");
    }

    // A form posted with it anyway launches nothing.
    let csrf = csrf_from(&app.web.get("/").await);
    let status = app
        .web
        .post(
            "/VM_start",
            &[("csrf", &csrf), ("giturl", REPO), ("profile", "gpu")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.web.view().await["state"].is_null(), "no VM");
    assert!(app.fake.find_calls(Method::POST, "servers").is_empty());
}

#[tokio::test]
async fn the_chosen_profiles_flavor_and_volume_size_reach_nova_and_cinder() {
    let app = spawn(profiles("GPU course"), 4000).await;
    let page = app
        .web
        .get(&format!("/VM_start?giturl={REPO}&profile=big"))
        .await;
    assert!(
        offer(&page, "big").contains("checked"),
        "?profile= picks it"
    );

    assert_eq!(app.launch_with("big").await, StatusCode::SEE_OTHER);
    app.web.wait_for("booting", Duration::from_secs(20)).await;

    let server = app.server_request();
    assert_eq!(server["flavorRef"], "3", "m1.medium: {server:#}");
    let bdm = &server["block_device_mapping_v2"][0];
    assert_eq!(bdm["volume_size"], 60, "{server:#}");
    let volumes: Vec<u64> = app.fake.world().volumes.values().map(|v| v.size).collect();
    assert_eq!(volumes, [60], "Cinder holds the profile's volume");
    let data = app.web.launch_data_of(&app.fake.user_data(0)).await;
    assert!(!data.gpu);
}

#[tokio::test]
async fn a_gpu_profile_boots_its_image_and_its_user_data_asks_for_the_gpus() {
    // alice registered through the configured link: the GPU profile is hers.
    let app = spawn(profiles("registration link"), 4000).await;

    assert_eq!(app.launch_with("gpu").await, StatusCode::SEE_OTHER);
    app.web.wait_for("booting", Duration::from_secs(20)).await;

    let server = app.server_request();
    assert_eq!(server["flavorRef"], "9", "{server:#}");
    let bdm = &server["block_device_mapping_v2"][0];
    assert_eq!(bdm["uuid"], app.gpu_image_id.as_str(), "{server:#}");
    assert_eq!(bdm["volume_size"], 120);
    let data = app.web.launch_data_of(&app.fake.user_data(0)).await;
    assert!(data.gpu, "the container runs with --gpus all");
}

/// With home volumes on (`[storage]`), a GPU profile's server is made of
/// the profile (flavor, image, boot volume size, GPUs) and also gets the
/// user's home volume, attached as a second disk and named in the launch
/// data.
#[tokio::test]
async fn a_gpu_profile_with_home_volumes_boots_its_shape_with_the_home_volume() {
    let app = spawn_with(profiles("registration link"), 4000, |config| {
        config.cloud.availability_zone = Some("nova".into());
        config.storage.home_volume_gb = 10;
    })
    .await;

    assert_eq!(app.launch_with("gpu").await, StatusCode::SEE_OTHER);
    app.web.wait_for("booting", Duration::from_secs(20)).await;

    let homes: Vec<(String, u64)> = app
        .fake
        .world()
        .volumes
        .values()
        .filter(|v| v.metadata.contains_key(stackbinder::cloud::META_HOME))
        .map(|v| (v.id.clone(), v.size))
        .collect();
    let [(home, 10)] = &homes[..] else {
        panic!("one home volume of 10 GB: {homes:?}")
    };
    let server = app.server_request();
    assert_eq!(server["flavorRef"], "9", "{server:#}");
    let bdm = server["block_device_mapping_v2"].as_array().unwrap();
    assert_eq!(bdm.len(), 2, "boot volume and home volume: {server:#}");
    assert_eq!(bdm[0]["uuid"], app.gpu_image_id.as_str(), "{server:#}");
    assert_eq!(bdm[0]["volume_size"], 120, "{server:#}");
    assert_eq!(bdm[1]["uuid"], home.as_str(), "{server:#}");
    assert_eq!(bdm[1]["source_type"], "volume", "{server:#}");
    assert_eq!(bdm[1]["delete_on_termination"], false, "{server:#}");
    let data = app.web.launch_data_of(&app.fake.user_data(0)).await;
    assert!(data.gpu, "the container runs with --gpus all");
    assert_eq!(data.home_volume_id.as_deref(), Some(home.as_str()));
}

#[tokio::test]
async fn without_profiles_a_vm_is_made_of_the_cloud_section() {
    let app = spawn(Profiles::default(), 4000).await;
    let page = app.web.get(&format!("/VM_start?giturl={REPO}")).await;
    assert!(!page.contains("name=\"profile\""), "nothing to choose");

    app.web.launch().await;
    app.web.wait_for("booting", Duration::from_secs(20)).await;

    let server = app.server_request();
    assert_eq!(server["flavorRef"], "4", "m1.large");
    assert_eq!(server["block_device_mapping_v2"][0]["volume_size"], 150);
}

#[tokio::test]
async fn check_verifies_every_profiles_flavor_and_image() {
    let env = setup().await;
    env.fake.add_image(GPU_IMAGE);
    let shape = |flavor: &str, image: &str| Shape {
        image: image.into(),
        flavor: flavor.into(),
        volume_size_gb: 100,
    };
    let items = env
        .cloud
        .check_profiles(&[
            ("gpu".into(), shape(GPU_FLAVOR, GPU_IMAGE)),
            ("huge".into(), shape("m9.huge", GPU_IMAGE)),
            ("lost".into(), shape(GPU_FLAVOR, "no-such-image")),
        ])
        .await;

    let [gpu, huge, lost] = &items[..] else {
        panic!("one line per profile: {items:#?}")
    };
    assert!(gpu.ok, "{gpu:?}");
    assert!(gpu.detail.contains("g1.gpu (8 VCPUs"), "{gpu:?}");
    assert!(!huge.ok && huge.detail.contains("m9.huge"), "{huge:?}");
    let fix = huge.fix.as_deref().unwrap();
    assert!(fix.contains("the flavor of profile \"huge\""), "{fix}");
    assert!(
        !lost.ok && lost.detail.contains("no-such-image"),
        "{lost:?}"
    );
}

#[tokio::test]
async fn the_check_command_fails_on_a_profile_whose_flavor_is_missing() {
    let env = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let check = |flavor: &str| {
        let toml = format!(
            "[cloud]\nbackend = \"openstack\"\ncloud = \"fake\"\nimage = \"stackbinder-snapshot\"\n\
             key_name = \"stackbinder-admin\"\nfloating_ip_pool = \"public\"\n\
             [[profiles]]\nname = \"big\"\ndescription = \"d\"\nflavor = \"{flavor}\"\nvolume_size_gb = 300\n"
        );
        std::fs::write(&config, toml).unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(["--config", config.to_str().unwrap(), "check"])
            .current_dir(dir.path())
            .env("OS_CLIENT_CONFIG_FILE", &env.clouds_yaml)
            .env_remove("OS_CLOUD")
            .output()
    };

    let good = check("m1.medium").await.expect("the binary runs");
    let bad = check("m9.huge").await.expect("the binary runs");

    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}");
    assert!(
        stdout.contains("OK   profile big: flavor m1.medium"),
        "{stdout}"
    );
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL profile big: no flavor \"m9.huge\""),
        "{stdout}"
    );
}
