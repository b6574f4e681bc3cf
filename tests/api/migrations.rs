//! Upgrades: what the migrations do to the records older versions left.

use stackbinder::domain::{GithubId, Login};
use stackbinder::store::Store;

#[tokio::test]
async fn upgrading_keeps_only_the_boot_volume_of_a_live_vm() {
    // Arrange: records as the old code left them, with every volume attached
    // at boot or delete time, the boot volume first.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("upgrade.db").display());
    let store = Store::connect(&url).await.unwrap();
    for (id, login) in [(1, "alice"), (2, "bob")] {
        store
            .record_login(GithubId(id), &Login::parse(login).unwrap())
            .await
            .unwrap();
    }
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
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 20261202600001")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;

    // Act
    let store = Store::connect(&url).await.unwrap();

    // Assert
    let volumes = |id: &'static str| {
        sqlx::query_scalar::<_, String>("SELECT volume_ids FROM vms WHERE id = ?1")
            .bind(id)
            .fetch_one(store.pool())
    };
    assert_eq!(volumes("live").await.unwrap(), r#"["boot"]"#);
    assert_eq!(
        volumes("gone").await.unwrap(),
        r#"["boot","operators"]"#,
        "history stays as it was"
    );
}
