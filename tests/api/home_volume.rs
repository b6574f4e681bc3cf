//! Home volumes on the simulated cloud (`demo`): made once, attached to
//! every VM of its owner, kept by a delete and by the reconciler.

use crate::helpers::*;
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Op;

#[tokio::test]
async fn the_demo_keeps_a_users_storage_across_their_vms() {
    // Arrange
    let app = spawn_app_with(TestOptions {
        configure: |c| {
            c.storage.home_volume_gb = 10;
            c.provision.orphan_grace_minutes = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ines").await;

    // Act: launch, delete, reconcile twice (grace 0), launch again.
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    let ready = app.wait_for_state("ready").await;
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    for _ in 0..2 {
        app.provisioner().reconcile().await.unwrap();
    }
    let home = app.cloud.created()[0]
        .home_volume
        .clone()
        .expect("attached");
    let kept = app.cloud.has_volume(&home);
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;

    // Assert
    assert!(
        ready
            .to_string()
            .contains("your storage is mounted at /home/jovyan/work"),
        "{ready:#}"
    );
    assert!(kept, "the delete and the reconciler kept the home volume");
    let created = app.cloud.created();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].home_volume.as_deref(), Some(home.as_str()));
    assert_eq!(app.cloud.calls(Op::CreateVolume), 1, "made once");
    assert_eq!(
        app.cloud.volume_count(),
        2,
        "the home volume and one boot volume"
    );
}

fn with_storage() -> TestOptions {
    TestOptions {
        configure: |c| c.storage.home_volume_gb = 10,
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn the_owner_sees_their_storage_and_deletes_it_only_by_typing_their_login() {
    // Arrange: a launch made the storage.
    let app = spawn_app_with(with_storage()).await;
    app.login_registered("ines").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.wait_for_state("ready").await;
    let home = app.cloud.created()[0].home_volume.clone().unwrap();
    let (_, status_page) = app.get_page("/VM_status").await;
    let (_, storage_page) = app.get_page("/storage").await;
    let csrf = csrf_from(&storage_page);

    // Act + Assert: without the CSRF token, with a wrong login, and while
    // the VM uses it, nothing is deleted.
    let forged = app.post_form("/storage", &[("confirm", "ines")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = app
        .post_form("/storage", &[("csrf", &csrf), ("confirm", "someone")])
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("type your login, ines, to confirm")
    );
    let in_use = app
        .post_form("/storage", &[("csrf", &csrf), ("confirm", "ines")])
        .await;
    assert_eq!(in_use.status(), StatusCode::BAD_REQUEST);
    assert!(
        in_use
            .text()
            .await
            .unwrap()
            .contains("delete your VM first")
    );
    assert!(app.cloud.has_volume(&home));

    // Act: delete the VM, then the storage.
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    let deleted = app
        .post_form("/storage", &[("csrf", &csrf), ("confirm", "INES")])
        .await;

    // Assert
    assert!(status_page.contains("10 GB in <code>/home/jovyan/work</code>, last attached 20"));
    assert!(storage_page.contains("id=\"size\">10 GB"), "{storage_page}");
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(
        deleted
            .text()
            .await
            .unwrap()
            .contains("Your storage (10 GB) and everything in it are deleted.")
    );
    assert!(!app.cloud.has_volume(&home), "the volume is gone");
    let ines = stackbinder::domain::Login::parse("ines").unwrap();
    let user = app.store().user_by_login(&ines).await.unwrap().unwrap();
    assert!(
        app.store()
            .home_volume(user.github_id)
            .await
            .unwrap()
            .is_none()
    );
    let (_, after) = app.get_page("/storage").await;
    assert!(after.contains("You have no storage yet"), "{after}");
}

#[tokio::test]
async fn storage_list_and_delete_on_the_command_line() {
    // Arrange: a database with alice's storage recorded (its volume is
    // already gone from the cloud, which deletes nothing more).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let store = stackbinder::store::Store::connect(&url).await.unwrap();
    let alice = stackbinder::domain::GithubId(4242);
    store
        .record_login(alice, &stackbinder::domain::Login::parse("alice").unwrap())
        .await
        .unwrap();
    store
        .record_home_volume(
            alice,
            "7d1e0c2b-5a4f-4b3e-8c9d-0e1f2a3b4c5d",
            10,
            Some("nova"),
        )
        .await
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(args)
            .env("STACKBINDER_DATABASE__URL", &url)
            .env("STACKBINDER_CLOUD__BACKEND", "simulated")
            .env_remove("STACKBINDER_CONFIG")
            .output()
            .expect("the binary runs")
    };

    // Act
    let listed = run(&["storage", "list"]);
    let deleted = run(&["storage", "delete", "alice"]);
    let again = run(&["storage", "delete", "alice"]);

    // Assert
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("alice") && listed.contains("7d1e0c2b-5a4f-4b3e-8c9d-0e1f2a3b4c5d"),
        "{listed}"
    );
    assert!(listed.contains("1 home volume(s)"), "{listed}");
    assert!(deleted.status.success(), "{deleted:?}");
    assert!(String::from_utf8_lossy(&deleted.stdout).contains("deleted the storage of alice"));
    assert!(store.home_volume(alice).await.unwrap().is_none());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("there is no storage to delete"));
}

#[tokio::test]
async fn expiry_and_idle_culling_keep_the_storage() {
    for culled_by in ["expiry", "idle culling"] {
        // Arrange
        let app = spawn_app_with(TestOptions {
            configure: |c| {
                c.storage.home_volume_gb = 10;
                c.launch.idle_timeout_minutes = 30;
                c.provision.idle_check_seconds = 0;
            },
            ..TestOptions::default()
        })
        .await;
        app.login_registered("ines").await;
        assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
        let view = app.wait_for_state("ready").await;
        let vm: stackbinder::domain::VmId = view["id"].as_str().unwrap().parse().unwrap();

        // Act
        if culled_by == "expiry" {
            app.store()
                .set_expiry(vm, chrono::Utc::now() - chrono::Duration::seconds(1))
                .await
                .unwrap();
        } else {
            app.cloud
                .set_jupyter_last_activity(chrono::Utc::now() - chrono::Duration::minutes(45));
        }
        app.wait_for_view(&app.browser, "the VM to be deleted", |v| {
            v["state"] == "deleted"
        })
        .await;

        // Assert: the boot volume went, the home volume stayed.
        let home = app.cloud.created()[0].home_volume.clone().unwrap();
        assert!(
            app.cloud.has_volume(&home),
            "{culled_by} deleted the storage"
        );
        assert_eq!(
            app.cloud.volume_count(),
            1,
            "{culled_by}: only the home volume is left"
        );
    }
}

#[tokio::test]
async fn the_used_space_the_vm_reports_shows_on_the_status_page_and_storage() {
    // Arrange: the test steps the driver: the VM stays `booting` while its
    // simulated script reports, so the report below is still taken.
    let app = spawn_app_with(TestOptions {
        configure: |c| c.storage.home_volume_gb = 10,
        drive_in_background: false,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ines").await;
    assert_is_redirect_to(&app.launch(REPO, "main", "").await, "/VM_status");
    app.step().await;
    app.wait_for_view(&app.browser, "the VM's ready report", |v| {
        v["progress"] == "ready"
    })
    .await;
    let data = app.launch_data(0).await;
    let (_, before) = app.get_page("/storage").await;

    // Act: the VM's next report carries what statvfs said of the mount.
    let report = serde_json::json!({"vm": data.vm_id, "seq": 100, "phase": null,
        "port": null, "log": [], "home_used_bytes": 2_100_000_000u64,
        "home_total_bytes": 9_800_000_000u64});
    let response = post_callback(&app, Some(&data.callback_secret), report.to_string()).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert!(before.contains("not reported yet"), "{before}");
    let (_, storage) = app.get_page("/storage").await;
    assert!(
        storage.contains("2.1 GB of 10 GB used, as of 20"),
        "{storage}"
    );
    let (_, status) = app.get_page("/VM_status").await;
    assert!(
        status.contains("; 2.1 GB of 10 GB used, as of 20"),
        "{status}"
    );
}

#[tokio::test]
async fn users_remove_keeps_the_storage_and_says_so_unless_purge() {
    // Arrange: bob and carol, each with storage recorded (their volumes
    // are already gone from the cloud, which deletes nothing more).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let store = stackbinder::store::Store::connect(&url).await.unwrap();
    let users = [("bob", 51), ("carol", 52)];
    for (login, id) in users {
        let id = stackbinder::domain::GithubId(id);
        let login = stackbinder::domain::Login::parse(login).unwrap();
        store.record_login(id, &login).await.unwrap();
        let volume = format!("00000000-0000-4000-8000-0000000000{}", id.0);
        store
            .record_home_volume(id, &volume, 10, None)
            .await
            .unwrap();
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(args)
            .env("STACKBINDER_DATABASE__URL", &url)
            .env("STACKBINDER_CLOUD__BACKEND", "simulated")
            .env("STACKBINDER_STORAGE__HOME_VOLUME_GB", "10")
            .env_remove("STACKBINDER_CONFIG")
            .output()
            .expect("the binary runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };

    // Act
    let kept = run(&["users", "remove", "bob"]);
    let purged = run(&["users", "revoke", "carol", "--purge"]);

    // Assert
    assert!(kept.contains("bob: their storage (volume"), "{kept}");
    assert!(
        kept.contains("is kept; `users remove bob --purge`"),
        "{kept}"
    );
    assert!(
        store
            .home_volume(stackbinder::domain::GithubId(51))
            .await
            .unwrap()
            .is_some()
    );
    assert!(purged.contains("carol: their storage (volume"), "{purged}");
    assert!(purged.contains(") is deleted"), "{purged}");
    assert!(
        store
            .home_volume(stackbinder::domain::GithubId(52))
            .await
            .unwrap()
            .is_none()
    );
}
