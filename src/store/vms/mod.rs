//! The VMs: what a VM's record holds (`record`), how VMs are found
//! (`queries`), a VM's life from launch to deletion (`lifecycle`), its job
//! and secrets (`assignment`), what the cloud made for it (`resources`)
//! and its own progress reports (`reports`).

mod assignment;
mod lifecycle;
mod queries;
mod record;
mod reports;
mod resources;

pub(crate) use assignment::assignment_json;
// For the claim of a pool VM, which runs them in its own transaction.
pub use assignment::{AssignmentLookup, SecretUse, VmSecrets};
#[allow(unused_imports)]
pub(crate) use assignment::{assign_vm_on, rotate_vm_secret_on};
pub use lifecycle::NewVm;
pub(super) use lifecycle::launch_message;
pub use record::VmRecord;
pub use reports::CallbackOutcome;

pub(super) const SELECT_VM: &str = "SELECT vms.*, users.login AS owner_login FROM vms JOIN users ON users.github_id = vms.owner_id";
