//! `stackbinder check` against the fake: one line per item, the fix on failure.

use crate::helpers::*;
use stackbinder::cloud::Cloud;

pub fn line<'a>(
    items: &'a [stackbinder::cloud::CheckItem],
    what: &str,
) -> &'a stackbinder::cloud::CheckItem {
    items
        .iter()
        .find(|i| i.what == what)
        .unwrap_or_else(|| panic!("no {what} line in {items:#?}"))
}

#[tokio::test]
async fn a_good_configuration_passes_every_check() {
    let env = setup().await;
    let items = env.cloud.check().await;
    assert!(items.iter().all(|i| i.ok), "{items:#?}");
    let whats: Vec<&str> = items.iter().map(|i| i.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "credentials",
            "image",
            "flavor",
            "key pair",
            "security groups",
            "network",
            "floating IP pool",
            "quotas"
        ]
    );
    assert!(
        line(&items, "quotas").detail.contains("0 of 20 instances"),
        "{items:#?}"
    );
    assert_eq!(env.fake.server_count(), 0, "check creates nothing");
}

#[tokio::test]
async fn missing_things_fail_with_their_fix() {
    let env = setup_with(
        |c| {
            c.image = "no-such-image".into();
            c.key_name = Some("lost-key".into());
            c.security_groups = vec!["ssh-whitelist".into(), "nope".into()];
            c.floating_ip_pool = Some("private".into());
        },
        false,
    )
    .await;
    env.fake.add_network("second");

    let items = env.cloud.check().await;

    assert!(line(&items, "credentials").ok);
    assert!(line(&items, "flavor").ok);
    let image = line(&items, "image");
    assert!(
        !image.ok && image.detail.contains("no-such-image"),
        "{image:?}"
    );
    assert!(image.fix.as_deref().unwrap().contains("cloud.image"));
    let key = line(&items, "key pair");
    assert!(
        !key.ok
            && key
                .fix
                .as_deref()
                .unwrap()
                .contains("openstack keypair create"),
        "{key:?}"
    );
    let sg = line(&items, "security groups");
    assert!(!sg.ok && sg.detail.contains("\"nope\""), "{sg:?}");
    let network = line(&items, "network");
    assert!(
        !network.ok && network.detail.contains("2 networks"),
        "{network:?}"
    );
    assert!(
        network.fix.as_deref().unwrap().contains("cloud.network"),
        "{network:?}"
    );
    let pool = line(&items, "floating IP pool");
    assert!(
        !pool.ok && pool.fix.as_deref().unwrap().contains("public"),
        "{pool:?}"
    );
    assert!(!line(&items, "quotas").ok);
}

#[tokio::test]
async fn bad_credentials_fail_the_first_line_and_stop() {
    let env = setup().await;
    std::fs::write(&env.clouds_yaml, "clouds: {}\n").unwrap();
    let cloud = cloud_for(&env.config, &env.clouds_yaml);
    let items = cloud.check().await;
    assert_eq!(items.len(), 1);
    assert!(!items[0].ok);
    assert!(
        items[0].detail.contains("no cloud named \"fake\""),
        "{:?}",
        items[0]
    );
}

#[tokio::test]
async fn the_check_command_exits_non_zero_on_a_failure() {
    let env = setup().await;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.toml");
    let toml = |image: &str| {
        format!(
            "[cloud]\nbackend = \"openstack\"\ncloud = \"fake\"\nimage = \"{image}\"\nkey_name = \"stackbinder-admin\"\nfloating_ip_pool = \"public\"\n"
        )
    };
    let run = |image: &str| {
        std::fs::write(&config, toml(image)).unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(["--config", config.to_str().unwrap(), "check"])
            .current_dir(config_dir.path())
            .env("OS_CLIENT_CONFIG_FILE", &env.clouds_yaml)
            .env_remove("OS_CLOUD")
            .output()
    };
    let good = run("stackbinder-snapshot").await.expect("the binary runs");
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("installation: none yet"),
        "check makes no database: {stdout}"
    );
    assert!(!config_dir.path().join("stackbinder.db").exists());
    assert!(stdout.contains("OK   image:"), "{stdout}");
    assert!(!stdout.contains("secret-password"), "{stdout}");

    let bad = run("missing").await.expect("the binary runs");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success());
    assert!(
        stdout.contains("FAIL image: no image \"missing\""),
        "{stdout}"
    );
    assert!(stdout.contains("     fix: "), "{stdout}");
}

/// The storage line of `check` for `storage`, on the fake with `zone`.
async fn storage_line(
    storage: stackbinder::config::StorageConfig,
    zone: Option<&str>,
    gigabytes: i64,
) -> stackbinder::cloud::CheckItem {
    let env = setup_with(|c| c.availability_zone = zone.map(str::to_owned), false).await;
    env.fake.world().limits.gigabytes = gigabytes;
    let items = env.cloud.check_storage(&storage).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    items[0].clone()
}

fn storage(gb: u32, volume_type: Option<&str>) -> stackbinder::config::StorageConfig {
    stackbinder::config::StorageConfig {
        home_volume_gb: gb,
        volume_type: volume_type.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_storage_line_checks_the_volume_type_the_zone_and_the_quota() {
    // A type and a zone that exist, and room.
    let good = storage_line(storage(10, Some("ssd")), Some("nova"), 4000).await;
    assert!(good.ok, "{good:?}");
    assert!(
        good.detail.contains("home volumes of 10 GB, ssd, in nova"),
        "{good:?}"
    );

    let no_type = storage_line(storage(10, Some("gold")), None, 4000).await;
    assert!(
        !no_type.ok
            && no_type
                .detail
                .contains("volume type \"gold\" does not exist")
    );
    assert!(no_type.detail.contains("__DEFAULT__, ssd"), "{no_type:?}");
    assert!(no_type.fix.unwrap().contains("storage.volume_type"));

    let no_zone = storage_line(storage(10, None), Some("az9"), 4000).await;
    assert!(!no_zone.ok && no_zone.detail.contains("no availability zone \"az9\""));
    assert!(no_zone.fix.unwrap().contains("cloud.availability_zone"));

    // 170 GB: a 150 GB boot volume fits, not with 30 GB of storage next to it.
    let full = storage_line(storage(30, None), None, 170).await;
    assert!(!full.ok, "{full:?}");
    assert!(
        full.detail
            .contains("no room for a new user's storage (30 GB)")
            && full.detail.contains("GB of volume storage"),
        "{full:?}"
    );
}

#[tokio::test]
async fn without_home_volumes_check_has_no_storage_line() {
    let env = setup().await;
    assert!(
        env.cloud
            .check_storage(&storage(0, Some("gold")))
            .await
            .is_empty()
    );
}
