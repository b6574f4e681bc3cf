//! Conformance: stackbinder against a real OpenStack control plane
//! (upstream Keystone, Glance, Placement, Nova on its fake virt driver,
//! Neutron without agents and Cinder on its fake driver), started on
//! 127.0.0.1 by `scripts/openstack-dev.sh up`. Every test is `#[ignore]`d
//! so a plain `cargo test` does not need the cloud; run them with
//!
//!     scripts/openstack-dev.sh up
//!     eval "$(scripts/openstack-dev.sh env)"
//!     cargo test --test conformance -- --ignored --test-threads=1
//!
//! Without `OPENSTACK_DEV_CLOUDS_YAML` every test fails, saying so.
//! The fake virt driver boots nothing, so a VM gets as far as `building`
//! (server ACTIVE, boot volume attached, floating IP on its port); what
//! the VM itself would do is covered by the tests in `tests/api/`.

mod check;
mod cli;
mod dev;
mod home_volume;
mod image_build;
mod launch;
mod ownership;
mod pool;
mod profiles;
mod proxy_mode;
mod reauth;
mod replicas;
mod web;
