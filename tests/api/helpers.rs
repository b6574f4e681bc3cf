//! The harness of the `tests/api` tests: the one in `tests/support/web_app.rs`
//! (the application on the simulated cloud, `TestApp`, and a browser), shared
//! with `tests/openstack` and `tests/conformance`.

#[path = "../support/web_app.rs"]
mod web_app;

pub use web_app::*;

/// The SQLite pool of a store, for tests that look at its rows directly
/// (they run on the SQLite store).
pub fn sqlite_pool(store: &stackbinder::store::Store) -> &sqlx::SqlitePool {
    match store.backend() {
        stackbinder::store::Backend::Sqlite(pool) => pool,
        stackbinder::store::Backend::Postgres(_) => {
            panic!("this test reads SQLite's rows directly")
        }
    }
}
