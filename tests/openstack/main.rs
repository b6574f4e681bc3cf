//! The OpenStack backend against a fake OpenStack that speaks the real
//! wire protocol (Keystone, Nova, Cinder, Neutron, Glance) on 127.0.0.1.

mod app;
mod auth;
mod check;
mod fake_openstack;
mod faults;
mod helpers;
mod home_volume;
mod image_build;
mod image_build_prebuild;
mod launch;
mod ownership;
mod pool;
mod profiles;
mod proxy_mode;
mod replicas;
