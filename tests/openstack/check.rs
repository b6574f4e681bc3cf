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
