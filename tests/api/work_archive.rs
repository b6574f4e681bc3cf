//! "Download my work" (`GET /storage/archive`) from a real jupyter-server
//! standing in for the VM's (see `tests/support/real_jupyter.rs`): the
//! archive holds every file under `work/`, byte for byte; only the owner
//! gets it, and only while their VM is ready.

use crate::helpers::*;
use crate::proxy_jupyter::real_jupyter::{self, RealJupyter, RecordingHop};
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Scenario;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// What the archive holds: each file's bytes, and each directory (`None`).
fn unpacked(archive: &[u8]) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut found = BTreeMap::new();
    for entry in tar.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let content = if entry.header().entry_type().is_dir() {
            None
        } else {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            Some(bytes)
        };
        found.insert(path, content);
    }
    found
}

/// Put `files` (path below `work/` → bytes) and the empty directory
/// `empty` into Jupyter's `work/`.
fn put(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (path, bytes) in files {
        let at = root.join("work").join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, bytes).unwrap();
    }
    std::fs::create_dir_all(root.join("work/empty")).unwrap();
}

/// ines with storage and a ready VM whose Jupyter is a real one (behind
/// a hop that records what reached it); `None` without Jupyter.
async fn ines_with_real_jupyter() -> Option<(TestApp, RealJupyter, RecordingHop)> {
    let python = real_jupyter::python()?;
    let jupyter = RealJupyter::start(&python, "ines").await;
    let hop = RecordingHop::start(jupyter.addr.into()).await;
    let app = spawn_app_with(TestOptions {
        configure: |c| c.storage.home_volume_gb = 10,
        ..TestOptions::default()
    })
    .await;
    app.cloud.push_scenario(Scenario::ExternalJupyter(hop.addr));
    app.login_registered("ines").await;
    app.launch(REPO, "", "").await;
    let view = app.wait_for_state("ready").await;
    // The VM's token is the one this Jupyter was started with.
    let vm = view["id"].as_str().unwrap().to_owned();
    on_test_pool!(app.store(), |pool| sqlx::query(
        "UPDATE vms SET jupyter_token = $1 WHERE id = $2"
    )
    .bind(&jupyter.token)
    .bind(&vm)
    .execute(pool)
    .await
    .map(drop))
    .unwrap();
    Some((app, jupyter, hop))
}

#[tokio::test]
async fn the_owner_downloads_their_work_from_the_running_jupyter_byte_for_byte() {
    // Arrange: ines's VM is ready, its Jupyter a real one, with her work.
    let Some((app, jupyter, hop)) = ines_with_real_jupyter().await else {
        return;
    };
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let files = [
        ("notes.md", b"# my notes\n".to_vec()),
        (
            "notebooks/deep/er/analysis.ipynb",
            br#"{"cells": []}"#.to_vec(),
        ),
        ("data/blob.bin", binary),
        ("data/my data é ü #1?.csv", "a,b\n1,2\n".as_bytes().to_vec()),
    ];
    put(&jupyter.root(), &files);
    std::fs::write(jupyter.root().join("outside.txt"), "not in work/").unwrap();
    let (_, storage_page) = app.get_page("/storage").await;

    // Act
    let response = app.get("/storage/archive").await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK, "{}", jupyter.log());
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/gzip");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"work-ines-"),
        "{disposition}"
    );
    let archive = unpacked(&response.bytes().await.unwrap());
    for (path, bytes) in &files {
        let inside = format!("work/{path}");
        assert_eq!(archive.get(&inside), Some(&Some(bytes.clone())), "{inside}");
    }
    for dir in [
        "work/empty",
        "work/notebooks",
        "work/notebooks/deep/er",
        "work/data",
    ] {
        assert_eq!(
            archive.get(dir),
            Some(&None),
            "{dir} in {:?}",
            archive.keys()
        );
    }
    assert_eq!(archive.len(), files.len() + 5, "{:?}", archive.keys());
    assert!(archive.keys().all(|p| p.starts_with("work/")));
    assert!(
        storage_page.contains("href=\"/storage/archive\""),
        "{storage_page}"
    );
    // Read with the VM's token, through the proxy's way to the VM.
    assert!(
        hop.heads()
            .iter()
            .any(|h| h.starts_with("get /user/ines/files/work/data/blob.bin"))
    );
}

#[tokio::test]
async fn only_the_owner_with_a_ready_vm_gets_the_archive() {
    // Arrange: ines has storage and a ready VM (the simulated Jupyter).
    let app = spawn_app_with(TestOptions {
        configure: |c| c.storage.home_volume_gb = 10,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ines").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let bob = app.new_browser();
    bob.login_registered("bob").await;
    let stranger = app.new_browser();

    // Act
    let bobs = bob.get("/storage/archive").await;
    let logged_out = stranger.get("/storage/archive").await;
    assert_is_redirect_to(&app.delete_vm().await, "/VM_status");
    app.wait_for_state("deleted").await;
    let (not_ready_status, not_ready) = app.get_page("/storage/archive").await;

    // Assert
    assert_eq!(bobs.status(), StatusCode::NOT_FOUND, "bob has no storage");
    assert_eq!(logged_out.status(), StatusCode::SEE_OTHER);
    let to = logged_out.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login"), "{to}");
    assert_eq!(not_ready_status, StatusCode::CONFLICT);
    assert!(
        not_ready.contains("your work is read from your running VM"),
        "{not_ready}"
    );
}

#[tokio::test]
async fn a_link_to_a_folder_above_ends_the_listing_with_a_clear_message() {
    let Some((app, jupyter, _hop)) = ines_with_real_jupyter().await else {
        return;
    };
    // Arrange: work/loop is work itself, again and again.
    let work = jupyter.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::os::unix::fs::symlink(&work, work.join("loop")).unwrap();

    // Act
    let (status, page) = app.get_page("/storage/archive").await;

    // Assert
    assert_eq!(status, StatusCode::CONFLICT, "{}", jupyter.log());
    assert!(
        page.contains("your work goes deeper than 32 folders"),
        "{page}"
    );
}
