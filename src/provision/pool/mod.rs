//! The warm pool: VMs booted ahead of demand from the snapshot, with
//! everything but an owner, for launches to claim. `plan` decides, the
//! driver's pool step carries it out.

mod claim;
mod driver;
pub mod plan;
