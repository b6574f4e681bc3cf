//! The PostgreSQL store itself, on a throw-away cluster started for this
//! binary whatever `TEST_STORE` says: it migrates a fresh database to the
//! schema SQLite has, and a second start changes nothing. Skipped, saying
//! why, where PostgreSQL is not installed; a failure under `CI=true`.

use crate::helpers::postgres::{bindir, database_url_for};
use crate::helpers::sqlite_pool;
use stackbinder::store::{Backend, Store};
use std::collections::BTreeSet;

/// False (after saying why) when PostgreSQL is missing outside CI.
fn postgres_installed() -> bool {
    if bindir().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "CI=true and PostgreSQL's initdb is not installed (apt install postgresql)"
    );
    eprintln!("skipped: PostgreSQL's initdb is not installed (apt install postgresql)");
    false
}

fn pg_pool(store: &Store) -> &sqlx::PgPool {
    match store.backend() {
        Backend::Postgres(pool) => pool,
        Backend::Sqlite(_) => panic!("a postgres:// URL opened SQLite"),
    }
}

fn migrations_in(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn a_fresh_postgres_database_migrates_and_a_second_start_is_a_no_op() {
    if !postgres_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(dir.path());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.kind(), "postgres");
    let applied = |store: Store| async move {
        let rows: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(pg_pool(&store))
                .await
                .unwrap();
        rows
    };
    let first = applied(store.clone()).await;
    assert_eq!(first.len(), migrations_in("migrations/postgres"));
    assert!(first.iter().all(|(_, ok)| *ok), "{first:?}");
    let id = store.installation_id().await.unwrap();
    store.close().await;

    let again = Store::connect(&url).await.unwrap();
    assert_eq!(
        applied(again.clone()).await,
        first,
        "a second start migrates nothing"
    );
    assert_eq!(again.installation_id().await.unwrap(), id);
}

#[tokio::test]
async fn postgres_ends_with_the_tables_columns_and_indexes_of_sqlite() {
    if !postgres_installed() {
        return;
    }
    assert_eq!(
        migrations_in("migrations/postgres"),
        migrations_in("migrations/sqlite"),
        "one PostgreSQL migration per SQLite version"
    );
    let dir = tempfile::tempdir().unwrap();
    let pg = Store::connect(&database_url_for(dir.path())).await.unwrap();
    let sqlite = Store::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let pg_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pg_pool(&pg))
    .await
    .unwrap()
    .into_iter()
    .collect();
    let sqlite_columns: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT IN ('_sqlx_migrations', 'sqlite_sequence')",
    )
    .fetch_all(sqlite_pool(&sqlite))
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(pg_columns, sqlite_columns);
    let pg_indexes: BTreeSet<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .fetch_all(pg_pool(&pg))
    .await
    .unwrap()
    .into_iter()
    .collect();
    let sqlite_indexes: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(sqlite_pool(&sqlite))
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(pg_indexes, sqlite_indexes);
}
