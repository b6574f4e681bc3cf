//! Home volumes (`[storage]`) through the whole application on the fake
//! OpenStack: what Cinder and Nova receive on a first launch and the next,
//! a delete that keeps the volume, a relaunch while it is still detaching,
//! a volume in another zone, a full quota, and a create whose answer was
//! lost (adopted by its metadata, never made twice).

use crate::app::web_app::WebApp;
use crate::fake_openstack::{Call, FakeOpenStack};
use crate::helpers::*;
use axum::http::Method;
use serde_json::Value;
use stackbinder::cloud::{Cloud, META_HOME, META_INSTANCE};
use stackbinder::config::Config;
use stackbinder::domain::{GithubId, Login};
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

struct App {
    web: WebApp,
    fake: FakeOpenStack,
}

impl App {
    /// A launch (which makes the storage, if it is the first) and the
    /// deletion of its VM.
    async fn launch_and_delete(&self) {
        self.web.launch().await;
        self.wait_for("building").await;
        self.web.delete().await;
        self.wait_for("deleted").await;
    }

    async fn wait_for(&self, state: &str) -> Value {
        self.web.wait_for(state, Duration::from_secs(20)).await
    }

    /// The block device mappings of every `POST /servers` Nova received.
    fn server_bdms(&self) -> Vec<Vec<Value>> {
        self.fake
            .find_calls(Method::POST, "servers")
            .into_iter()
            .filter(|c: &Call| c.path == "servers")
            .map(|c| {
                c.body.expect("a body")["server"]["block_device_mapping_v2"]
                    .as_array()
                    .expect("a list")
                    .clone()
            })
            .collect()
    }

    fn home_volumes(&self) -> Vec<String> {
        self.fake
            .world()
            .volumes
            .values()
            .filter(|v| v.metadata.contains_key(META_HOME))
            .map(|v| v.id.clone())
            .collect()
    }
}

async fn spawn(configure: impl FnOnce(&mut Config)) -> App {
    let env = setup().await;
    {
        let mut w = env.fake.world();
        w.server_address = "127.0.0.1".into();
        w.pool_free = vec!["127.0.0.1".into()];
        w.boot_polls = 1;
    }
    let mut config = Config::defaults();
    config.provision.poll_interval_ms = NonZero::new(50).unwrap();
    config.cloud = env.config.clone();
    config.cloud.name_prefix = "binder-".into();
    config.cloud.availability_zone = Some("nova".into());
    config.storage.home_volume_gb = 10;
    configure(&mut config);
    let cloud: Arc<dyn Cloud> = Arc::new(cloud_for(&config.cloud, &env.clouds_yaml));
    let web = WebApp::start(config, cloud, "alice", Duration::from_secs(10)).await;
    let app = App {
        web,
        fake: env.fake.clone(),
    };
    std::mem::forget(env); // keep the clouds.yaml directory for the run
    app
}

fn alice() -> GithubId {
    GithubId::for_demo(&Login::parse("alice").unwrap())
}

/// The home volume's entry in a server's block device mapping.
fn assert_home_bdm(bdm: &[Value], volume: &str) {
    assert_eq!(bdm.len(), 2, "boot volume and home volume: {bdm:#?}");
    assert_eq!(bdm[0]["boot_index"], 0);
    assert_eq!(bdm[0]["source_type"], "image");
    let home = &bdm[1];
    assert_eq!(home["uuid"], volume);
    assert_eq!(home["source_type"], "volume");
    assert_eq!(home["destination_type"], "volume");
    assert_eq!(home["boot_index"], -1);
    assert_eq!(home["delete_on_termination"], false);
    assert!(home.get("volume_size").is_none(), "{home}");
}

#[tokio::test]
async fn a_first_launch_makes_the_home_volume_and_every_boot_attaches_the_same_one() {
    // Arrange
    let app = spawn(|c| {
        c.provision.reconcile_interval_seconds = 0;
        c.provision.orphan_grace_minutes = 0;
    })
    .await;

    // Act: launch, delete, let the reconciler look, launch again.
    app.web.launch().await;
    app.wait_for("building").await;
    let after_first = app.fake.volume_creates();
    app.web.delete().await;
    app.wait_for("deleted").await;
    app.web
        .wait_for_reconcile_passes(2, Duration::from_secs(20))
        .await;
    let kept = app.home_volumes();
    app.web.launch().await;
    app.wait_for("building").await;

    // Assert: one Cinder create, with the name, size, zone and marks.
    let creates = app.fake.volume_creates();
    assert_eq!(after_first.len(), 1);
    assert_eq!(creates.len(), 1, "made once: {creates:#?}");
    let create = &creates[0];
    assert_eq!(create["name"], "binder-home-alice");
    assert_eq!(create["size"], 10);
    assert_eq!(create["availability_zone"], "nova");
    assert!(create.get("volume_type").is_none(), "the default type");
    assert_eq!(create["metadata"][META_HOME], alice().to_string());
    assert_eq!(create["metadata"]["stackbinder_owner"], alice().to_string());
    let installation = app.web.installation().await;
    assert_eq!(create["metadata"][META_INSTANCE], installation.as_str());
    // The delete and the reconciler kept it.
    assert_eq!(kept.len(), 1, "the home volume outlives the VM");
    let volume = kept[0].clone();
    // Both boots attached that volume, the second to a new server.
    let bdms = app.server_bdms();
    assert_eq!(bdms.len(), 2);
    for bdm in &bdms {
        assert_home_bdm(bdm, &volume);
    }
    let data = app.web.launch_data_of(&app.fake.user_data(1)).await;
    assert_eq!(data.home_volume_id.as_deref(), Some(volume.as_str()));
    let record = app.web.provisioner().store().home_volume(alice()).await;
    let record = record.unwrap().expect("recorded");
    assert_eq!(record.volume_id, volume);
    assert_eq!(record.size_gb, 10);
    assert!(record.last_attached_at.is_some());
    // Only the boot volume of the first VM went.
    assert_eq!(app.fake.volume_count(), 2, "home + the new boot volume");
}

#[tokio::test]
async fn a_relaunch_while_the_volume_is_still_detaching_waits_and_then_boots() {
    // Arrange
    let app = spawn(|_| {}).await;
    app.web.launch().await;
    app.wait_for("building").await;
    app.fake.world().detach_polls = 4;
    app.web.delete().await;
    app.wait_for("deleted").await;

    // Act
    app.web.launch().await;
    let building = app.wait_for("building").await;

    // Assert: told why it waited, and no create was tried meanwhile.
    let warnings = building["warnings"].to_string();
    assert!(
        warnings.contains("your storage is still attached to your previous VM (detaching)"),
        "{building:#}"
    );
    let detaching_reads = app
        .fake
        .find_calls(Method::GET, "volumes/")
        .into_iter()
        .filter(|c| !c.path.ends_with("detail"))
        .count();
    assert!(detaching_reads >= 5, "waited while detaching");
    assert_eq!(app.server_bdms().len(), 2, "no create while it detached");
    assert!(building["error"].is_null(), "{building:#}");
}

#[tokio::test]
async fn a_home_volume_in_another_zone_fails_the_launch_with_both_zones_named() {
    // Arrange: the volume was moved to another zone meanwhile.
    let app = spawn(|_| {}).await;
    app.launch_and_delete().await;
    let volume = app.home_volumes()[0].clone();
    app.fake
        .world()
        .volumes
        .get_mut(&volume)
        .unwrap()
        .availability_zone = "az2".into();

    // Act
    app.web.launch().await;
    let failed = app.wait_for("failed").await;

    // Assert
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("is in availability zone \"az2\", but VMs start in \"nova\""),
        "{failed:#}"
    );
    assert_eq!(
        app.server_bdms().len(),
        1,
        "no server for the second launch"
    );
}

#[tokio::test]
async fn a_full_volume_quota_fails_the_first_launch_in_words_before_anything_is_made() {
    // Arrange
    let app = spawn(|_| {}).await;
    app.fake.world().limits.gigabytes = 5;

    // Act
    app.web.launch().await;
    let failed = app.wait_for("failed").await;

    // Assert
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "there is no room for your storage: quota exceeded: this project uses 0 of 5 GB \
             of volume storage, and your storage needs 10"
        ),
        "{failed:#}"
    );
    assert!(app.fake.volume_creates().is_empty());
    assert!(app.server_bdms().is_empty());
}

#[tokio::test]
async fn a_volume_whose_create_answer_was_lost_is_adopted_by_its_metadata_not_made_twice() {
    // Arrange: Cinder makes the volume, and the answer never arrives (as
    // if stackbinder had crashed between the create and its record).
    let app = spawn(|_| {}).await;
    app.fake.world().lose_volume_answers = 1;

    // Act
    app.web.launch().await;
    app.wait_for("building").await;

    // Assert
    assert_eq!(app.fake.volume_creates().len(), 1, "never made twice");
    let homes = app.home_volumes();
    assert_eq!(homes.len(), 1);
    assert_home_bdm(&app.server_bdms()[0], &homes[0]);
    let record = app.web.provisioner().store().home_volume(alice()).await;
    assert_eq!(record.unwrap().unwrap().volume_id, homes[0]);
}

#[tokio::test]
async fn delete_my_storage_deletes_only_a_volume_marked_as_the_users() {
    // Arrange: a launch made the storage; the VM is gone.
    let app = spawn(|_| {}).await;
    app.launch_and_delete().await;
    let volume = app.home_volumes()[0].clone();
    let provisioner = app.web.provisioner();

    // Act: first with the marks stripped (an operator's volume now), then
    // with them back.
    let marks = std::mem::take(&mut app.fake.world().volumes.get_mut(&volume).unwrap().metadata);
    let refused = provisioner.delete_storage(alice()).await;
    let home_deletes = || {
        app.fake
            .find_calls(Method::DELETE, &format!("volumes/{volume}"))
            .len()
    };
    let deletes_when_unmarked = home_deletes();
    app.fake.world().volumes.get_mut(&volume).unwrap().metadata = marks;
    let deleted = provisioner.delete_storage(alice()).await;

    // Assert
    let refused = refused.expect_err("not ours any more").to_string();
    assert!(
        refused.contains("does not carry this installation's marks"),
        "{refused}"
    );
    assert_eq!(
        deletes_when_unmarked, 0,
        "an unmarked volume is not touched"
    );
    assert_eq!(deleted.expect("deleted").volume_id, volume);
    assert_eq!(home_deletes(), 1);
    assert!(app.home_volumes().is_empty(), "gone from Cinder");
    assert!(
        provisioner
            .store()
            .home_volume(alice())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_volume_that_never_finishes_detaching_fails_the_relaunch_after_the_boot_timeout() {
    // Arrange
    let app = spawn(|c| c.launch.boot_timeout_seconds = NonZero::new(1).unwrap()).await;
    app.web.launch().await;
    app.wait_for("building").await;
    app.fake.world().detach_polls = u32::MAX;
    app.web.delete().await;
    app.wait_for("deleted").await;

    // Act
    app.web.launch().await;
    let failed = app.wait_for("failed").await;

    // Assert
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("still attached to your previous VM (detaching)")
            && error.contains("gave up after 1 s; try again later"),
        "{failed:#}"
    );
    assert_eq!(app.server_bdms().len(), 1, "no server for the relaunch");
}

/// Move every time of alice's storage and VMs `days` into the past, as if
/// that long had gone by since (the clock the retention reads).
async fn age_storage(app: &App, days: i64) {
    let then = chrono::Utc::now() - chrono::Duration::days(days);
    let store = app.web.provisioner().store().clone();
    let statements = [
        "UPDATE home_volumes SET created_at = $1, last_attached_at = $1 WHERE github_id = $2",
        "UPDATE vms SET deleted_at = $1 WHERE owner_id = $2 AND deleted_at IS NOT NULL",
    ];
    for sql in statements {
        match store.backend() {
            stackbinder::store::Backend::Sqlite(pool) => sqlx::query(sql)
                .bind(then)
                .bind(alice())
                .execute(pool)
                .await
                .map(drop),
            stackbinder::store::Backend::Postgres(pool) => sqlx::query(sql)
                .bind(then)
                .bind(alice())
                .execute(pool)
                .await
                .map(drop),
        }
        .unwrap();
    }
}

#[tokio::test]
async fn storage_unused_past_the_retention_is_deleted_but_never_while_its_owner_has_a_vm() {
    // Arrange: 30 days of retention; alice's VM is up, her storage
    // attached "31 days ago".
    let app = spawn(|c| {
        c.storage.retention_days = 30;
        c.provision.reconcile_interval_seconds = 0;
    })
    .await;
    app.web.launch().await;
    app.wait_for("building").await;
    let volume = app.home_volumes()[0].clone();
    let deletes = || {
        app.fake
            .find_calls(Method::DELETE, &format!("volumes/{volume}"))
            .len()
    };
    age_storage(&app, 31).await;

    // Act: the storage job runs with the VM up, then after its deletion.
    app.web
        .wait_for_reconcile_passes(2, Duration::from_secs(20))
        .await;
    let while_up = deletes();
    app.web.delete().await;
    app.wait_for("deleted").await;
    let (_, warned) = app.web.browser.get_page("/storage").await;
    age_storage(&app, 31).await;
    app.web
        .wait_for_reconcile_passes(2, Duration::from_secs(20))
        .await;

    // Assert
    assert_eq!(while_up, 0, "her VM uses it");
    assert!(
        !warned.contains("will be deleted on"),
        "just detached: 30 days left, no warning yet: {warned}"
    );
    assert_eq!(deletes(), 1, "Cinder was asked to delete it");
    assert!(app.home_volumes().is_empty(), "gone from Cinder");
    let record = app.web.provisioner().store().home_volume(alice()).await;
    assert!(record.unwrap().is_none(), "forgotten");
}

#[tokio::test]
async fn the_pages_warn_a_week_before_the_retention_deletes_the_storage() {
    // Arrange: alice's storage unused for 25 of its 30 days.
    let app = spawn(|c| c.storage.retention_days = 30).await;
    app.launch_and_delete().await;
    age_storage(&app, 25).await;

    // Act
    let (_, storage) = app.web.browser.get_page("/storage").await;

    // Assert
    let day = (chrono::Utc::now() + chrono::Duration::days(5)).format("%Y-%m-%d");
    let warning = format!("Your storage will be deleted on {day} unless you launch before then");
    assert!(storage.contains(&warning), "{storage}");
    assert_eq!(app.home_volumes().len(), 1, "not yet");
}
