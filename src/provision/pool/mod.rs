//! The warm pool: VMs booted ahead of demand from the snapshot, with
//! everything but an owner, for launches to claim. `plan` decides, the
//! driver's pool step (`driver`) carries it out, and `claim` gives a ready
//! one to a launch; what the driver then does for a claimed VM is in
//! `provision/driver/claimed.rs`.

mod claim;
mod driver;
pub mod plan;
