//! The harness of the `tests/api` tests: the one in `tests/support/web_app.rs`
//! (the application on the simulated cloud, `TestApp`, and a browser), shared
//! with `tests/openstack` and `tests/conformance`.

#[path = "../support/web_app.rs"]
mod web_app;

pub use web_app::*;
