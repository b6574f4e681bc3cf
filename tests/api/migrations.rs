//! Upgrades: what the migrations do to the records older versions left.

use crate::helpers::sqlite_pool;
use stackbinder::domain::{GithubId, Login, Phase};
use stackbinder::store::Store;

#[tokio::test]
async fn upgrading_keeps_only_the_boot_volume_of_a_live_vm() {
    // Arrange: records as the old code left them, with every volume attached
    // at boot or delete time, the boot volume first.
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = alice_and_bob(&dir).await;
    for (id, owner, state) in [("live", 1, "ready"), ("gone", 2, "deleted")] {
        sqlx::query(
            "INSERT INTO vms (id, owner_id, name, repo, git_ref, url_path, state, volume_ids,
                              jupyter_token, created_at, updated_at, phase_started_at)
             VALUES (?1, ?2, 'binder', 'r', 'HEAD', '', ?3, '[\"boot\",\"operators\"]',
                     't', '2026-01-01', '2026-01-01', '2026-01-01')",
        )
        .bind(id)
        .bind(owner)
        .bind(state)
        .execute(sqlite_pool(&store))
        .await
        .unwrap();
    }

    // Act
    let store = upgrade(store, &url, 20261202600001).await;

    // Assert
    let volumes = |id: &'static str| {
        sqlx::query_scalar::<_, String>("SELECT volume_ids FROM vms WHERE id = ?1")
            .bind(id)
            .fetch_one(sqlite_pool(&store))
    };
    assert_eq!(volumes("live").await.unwrap(), r#"["boot"]"#);
    assert_eq!(
        volumes("gone").await.unwrap(),
        r#"["boot","operators"]"#,
        "history stays as it was"
    );
}

/// A VM record as a test writes it by hand:
/// `(id, owner, repo, state, progress, failed_during)`.
type OldVm<'a> = (&'a str, i64, &'a str, &'a str, &'a str, Option<&'a str>);

/// Old records as a test writes them by hand: users `alice` (1) and `bob`
/// (2), and `vms`.
async fn store_with(dir: &tempfile::TempDir, vms: &[OldVm<'_>]) -> (Store, String) {
    let (store, url) = alice_and_bob(dir).await;
    for (id, owner, repo, state, progress, failed_during) in vms {
        sqlx::query(
            "INSERT INTO vms (id, owner_id, name, repo, git_ref, url_path, state, progress,
                              failed_during, jupyter_token, created_at, updated_at, phase_started_at)
             VALUES (?1, ?2, 'binder', ?3, 'HEAD', '', ?4, ?5, ?6, 't',
                     '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .bind(id)
        .bind(owner)
        .bind(repo)
        .bind(state)
        .bind(progress)
        .bind(failed_during)
        .execute(sqlite_pool(&store))
        .await
        .unwrap();
    }
    (store, url)
}

#[tokio::test]
async fn upgrading_reads_a_failure_after_ready_as_one_in_the_starting_phase() {
    // Arrange: older versions stored the last progress, `ready`, as the
    // phase a VM failed in.
    let dir = tempfile::tempdir().unwrap();
    let id = "5a1c3a52-6d1f-4c32-9a44-3c1c1f0e7a01";
    let repo = "https://github.com/a/b";
    let (store, url) = store_with(&dir, &[(id, 1, repo, "failed", "failed", Some("ready"))]).await;

    // Act
    let store = upgrade(store, &url, 20261203300001).await;

    // Assert
    let vm = store
        .live_vm_of(GithubId(1))
        .await
        .unwrap()
        .expect("the VM");
    assert_eq!(vm.failed_during, Some(Phase::Starting));
    assert_eq!(vm.script_phase(), Phase::Starting);
}

#[tokio::test]
async fn a_record_that_does_not_pass_its_type_is_a_store_error_not_a_string() {
    // Arrange: a repository no launch would accept, written by hand.
    let dir = tempfile::tempdir().unwrap();
    let bad = "5a1c3a52-6d1f-4c32-9a44-3c1c1f0e7a02";
    let good = "5a1c3a52-6d1f-4c32-9a44-3c1c1f0e7a03";
    let (store, _url) = store_with(
        &dir,
        &[
            (
                bad,
                1,
                "ftp://example.org/$(reboot)",
                "ready",
                "ready",
                None,
            ),
            (good, 2, "https://github.com/a/b", "ready", "ready", None),
        ],
    )
    .await;

    // Act
    let bad_one = store.live_vm_of(GithubId(1)).await;
    let good_one = store.live_vm_of(GithubId(2)).await;

    // Assert
    let error = bad_one.expect_err("the bad record is refused").to_string();
    assert!(
        error.contains("repo") && error.contains("https://"),
        "the error names the column and the rule: {error}"
    );
    let vm = good_one.unwrap().expect("the good record reads");
    assert_eq!(vm.repo, "https://github.com/a/b");
    assert_eq!(vm.owner_login, "bob");
}

/// Open the database again as a version without `migration` would have
/// left it, so that `migration` runs on the records.
async fn upgrade(store: Store, url: &str, migration: i64) -> Store {
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?1")
        .bind(migration)
        .execute(sqlite_pool(&store))
        .await
        .unwrap();
    store.close().await;
    Store::connect(url).await.unwrap()
}

/// A database in `dir` with the users `alice` (1) and `bob` (2), and its URL.
async fn alice_and_bob(dir: &tempfile::TempDir) -> (Store, String) {
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let store = Store::connect(&url).await.unwrap();
    for (id, login) in [(1, "alice"), (2, "bob")] {
        store
            .record_login(GithubId(id), &Login::parse(login).unwrap())
            .await
            .unwrap();
    }
    (store, url)
}
