//! stackbinder: Binder-style, on-demand Jupyter VMs on OpenStack.
//!
//! The modules follow the way a request flows: `web` parses and authorises,
//! `provision` runs the launch/delete state machine, `cloud` is the only door
//! to a cloud, and `store` records every step so a restart can pick it up.

pub mod access;
pub mod app;
pub mod cli;
pub mod cloud;
pub mod cloud_init;
pub mod config;
pub mod domain;
pub mod github;
pub mod host_network;
pub mod image_build;
pub mod lease;
pub mod metrics;
pub mod provision;
pub mod proxy;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod web;
