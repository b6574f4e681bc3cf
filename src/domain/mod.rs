//! Validated types: once a value has one of these types it has been checked,
//! so nothing past the web handlers ever sees an unchecked user string.

mod git_ref;
mod ide;
mod launch;
mod launch_path;
mod log_line;
mod login;
mod phase;
mod profile_name;
pub mod repo_policy;
mod repo_spec;
pub mod report;
mod text_column;
mod url_path;
mod vm_id;
mod vm_state;

pub use git_ref::GitRef;
pub use ide::Ide;
pub use launch::{LaunchParams, LaunchRequest};
pub use launch_path::LaunchPath;
pub use log_line::LogLine;
pub use login::{GithubId, Login};
pub use phase::Phase;
pub use profile_name::ProfileName;
pub use repo_policy::RepoPattern;
pub use repo_spec::RepoSpec;
pub use url_path::UrlPath;
pub use vm_id::VmId;
pub use vm_state::{Progress, VmState};
