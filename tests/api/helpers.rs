//! The harness of the `tests/api` tests: the one in `tests/support/web_app.rs`
//! (the application on the simulated cloud, `TestApp`, and a browser), shared
//! with `tests/openstack` and `tests/conformance`.

#[path = "../support/web_app.rs"]
mod web_app;

pub use web_app::*;

use stackbinder::store::{Backend, Store};
use tower_sessions::cookie::time::OffsetDateTime;

/// The SQLite pool of a store, for tests that look at its rows directly
/// (they run on the SQLite store).
pub fn sqlite_pool(store: &Store) -> &sqlx::SqlitePool {
    match store.backend() {
        Backend::Sqlite(pool) => pool,
        Backend::Postgres(_) => {
            panic!("this test reads SQLite's rows directly")
        }
    }
}

/// Run `$body` with `$pool` bound to the store's pool, whichever store the
/// test runs on (`TEST_STORE`): the body is expanded once per driver, so
/// one query text with `$N` placeholders serves both, as in the store.
macro_rules! on_test_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.backend() {
            stackbinder::store::Backend::Sqlite($pool) => $body,
            stackbinder::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_test_pool;

/// tower-sessions' table on the store the test runs on: its SQLite store
/// keeps `tower_sessions` (expiry as RFC 3339 text), its PostgreSQL store
/// `"tower_sessions"."session"` (expiry a `timestamptz`). sqlx reads and
/// writes `OffsetDateTime` in both, so the tests compare times, not texts.
fn session_table(store: &Store) -> &'static str {
    match store.backend() {
        Backend::Sqlite(_) => "tower_sessions",
        Backend::Postgres(_) => r#""tower_sessions"."session""#,
    }
}

/// How many session rows there are.
pub async fn session_count(store: &Store) -> i64 {
    let count = format!("SELECT COUNT(*) FROM {}", session_table(store));
    on_test_pool!(store, |pool| sqlx::query_scalar(&count)
        .fetch_one(pool)
        .await)
    .expect("count the session rows")
}

/// The stored row of session `id`: its MessagePack data and its expiry.
pub async fn session_row(store: &Store, id: &str) -> Option<(Vec<u8>, OffsetDateTime)> {
    let select = format!(
        "SELECT data, expiry_date FROM {} WHERE id = $1",
        session_table(store)
    );
    on_test_pool!(store, |pool| sqlx::query_as(&select)
        .bind(id)
        .fetch_optional(pool)
        .await)
    .expect("read the session row")
}

/// Replace the data and the expiry of session `id` (what time passing or
/// another request would have done, without waiting).
pub async fn set_session_row(store: &Store, id: &str, data: &[u8], expiry: OffsetDateTime) {
    let update = format!(
        "UPDATE {} SET data = $1, expiry_date = $2 WHERE id = $3",
        session_table(store)
    );
    let done = on_test_pool!(store, |pool| sqlx::query(&update)
        .bind(data)
        .bind(expiry)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .expect("update the session row");
    assert_eq!(done, 1, "no session row {id}");
}
