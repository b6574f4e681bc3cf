//! The VMs: what a VM's record holds (`record`), how VMs are found
//! (`queries`), a VM's life from launch to deletion (`lifecycle`), what the
//! cloud made for it (`resources`) and its own progress reports (`reports`).

mod lifecycle;
mod queries;
mod record;
mod reports;
mod resources;

pub use lifecycle::NewVm;
pub(super) use lifecycle::launch_message;
pub use record::VmRecord;
pub use reports::CallbackOutcome;

pub(super) const SELECT_VM: &str = "SELECT vms.*, users.login AS owner_login FROM vms JOIN users ON users.github_id = vms.owner_id";
