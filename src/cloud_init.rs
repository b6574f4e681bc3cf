//! User data for a user's VM: a cloud-config that writes the launch
//! parameters as a JSON file and a fixed script that reads them. What the
//! user typed reaches the VM only as JSON data, never as shell code.

mod base_image;

pub use base_image::{
    IMAGE_BUILD_MARKER, IMAGE_DATA_PATH, IMAGE_SCRIPT_PATH, ImageBuildVerdict, image_build_verdict,
    render_base_image,
};

use crate::domain::{Progress, VmId};
use serde::{Deserialize, Serialize};
use url::Url;

/// Where the launch parameters land on the VM.
pub const LAUNCH_DATA_PATH: &str = "/etc/stackbinder/launch.json";
/// Where the launch script lands on the VM.
pub const LAUNCH_SCRIPT_PATH: &str = "/usr/local/sbin/stackbinder-launch";
const LAUNCH_SCRIPT: &str = include_str!("../cloud-init/launch.sh");

/// Everything the launch script needs, written to `LAUNCH_DATA_PATH`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchData {
    pub vm_id: VmId,
    /// The owner's GitHub login: Jupyter serves under `/user/<login>/`.
    pub login: String,
    pub repo: String,
    pub git_ref: String,
    pub url_path: String,
    pub jupyter_port: u16,
    pub jupyter_token: String,
    pub callback_url: Url,
    pub callback_secret: String,
    /// The launch profile asks for GPUs: the container runs with
    /// `--gpus all`.
    #[serde(default)]
    pub gpu: bool,
    /// The owner's home volume, which the script finds by its serial and
    /// mounts at /home/jovyan/work in the container; none without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_volume_id: Option<String>,
}

/// What every VM is booted with, pool VM or not: enough to ask stackbinder
/// for its job (`GET /api/vm/assignment`) and nothing about its owner, so
/// a pool VM can be booted before anyone asks for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BootData {
    pub vm_id: VmId,
    /// Where the VM reports its progress (`POST`).
    pub callback_url: Url,
    /// Where the VM long-polls for its assignment (`GET`).
    pub assignment_url: Url,
    /// The VM's boot secret. A claimed pool VM gets a new one with its
    /// assignment, so whoever read the user data cannot act for the owner.
    pub callback_secret: String,
    pub jupyter_port: u16,
    /// Repositories a pool VM builds ahead, before it asks for its job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prebuild: Vec<PinnedRepo>,
}

/// A course repository pinned in `[pool] repos`, built ahead on pool VMs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinnedRepo {
    pub repo: String,
    pub git_ref: String,
}

/// The answer of `GET /api/vm/assignment`: whose VM this is and what to run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Assignment {
    /// The owner's GitHub login: Jupyter serves under `/user/<login>/`.
    pub login: String,
    pub repo: String,
    pub git_ref: String,
    pub url_path: String,
    pub jupyter_token: String,
    #[serde(default)]
    pub gpu: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_volume_id: Option<String>,
    /// The secret that replaces the boot secret from now on (a claimed
    /// pool VM); none when the boot secret stays the VM's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

/// One progress report from the VM to `POST /api/vm/callback`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallbackReport {
    pub vm: VmId,
    /// Increases with every report; older or repeated ones are ignored.
    pub seq: i64,
    pub phase: Option<Progress>,
    /// The port Jupyter listens on, with `ready`.
    pub port: Option<u16>,
    #[serde(default)]
    pub log: Vec<String>,
}

/// The user data of a launch, a cloud-config: its two files and the one
/// command that runs the script on the data.
#[derive(Serialize, Deserialize)]
struct LaunchUserData {
    write_files: Vec<WriteFile>,
    runcmd: Vec<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct WriteFile {
    path: String,
    owner: String,
    permissions: String,
    content: String,
}

/// Render the user data for one VM.
pub fn render_user_data(data: &LaunchData) -> String {
    let config = LaunchUserData {
        write_files: vec![
            WriteFile {
                path: LAUNCH_DATA_PATH.into(),
                owner: "root:root".into(),
                permissions: "0600".into(),
                content: serde_json::to_string_pretty(data).expect("launch data serializes"),
            },
            WriteFile {
                path: LAUNCH_SCRIPT_PATH.into(),
                owner: "root:root".into(),
                permissions: "0755".into(),
                content: LAUNCH_SCRIPT.into(),
            },
        ],
        runcmd: vec![vec![LAUNCH_SCRIPT_PATH.into(), LAUNCH_DATA_PATH.into()]],
    };
    let yaml = serde_yaml_ng::to_string(&config).expect("cloud-config serializes");
    format!("#cloud-config\n{yaml}")
}

/// Read the launch data back out of user data, as the VM does.
pub fn parse_launch_data(user_data: &str) -> Option<LaunchData> {
    let config: LaunchUserData = serde_yaml_ng::from_str(user_data).ok()?;
    let file = config
        .write_files
        .iter()
        .find(|f| f.path == LAUNCH_DATA_PATH)?;
    serde_json::from_str(&file.content).ok()
}

// SHIM-UNTIL-AGENT-MERGE
pub fn render_boot_data(data: &BootData) -> String {
    serde_json::to_string(data).expect("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> LaunchData {
        LaunchData {
            vm_id: VmId::new(),
            login: "grace".into(),
            repo: "https://github.com/a/b'; reboot; echo '$(id)`x`\nruncmd:".into(),
            git_ref: "--upload-pack=x".into(),
            url_path: "lab\"\n- [rm, -rf, /]".into(),
            jupyter_port: 8888,
            jupyter_token: "tok".into(),
            callback_url: Url::parse("http://127.0.0.1:8080/api/vm/callback").unwrap(),
            callback_secret: "s3cret".into(),
            gpu: false,
            home_volume_id: Some("0b5e2d3c-1a4f-4e6b-9c8d-7f6e5d4c3b2a".into()),
        }
    }

    #[test]
    fn user_data_is_a_cloud_config_that_round_trips() {
        let data = hostile();
        let rendered = render_user_data(&data);
        assert!(rendered.starts_with("#cloud-config\n"));
        assert_eq!(parse_launch_data(&rendered), Some(data));
    }

    #[test]
    fn hostile_values_cannot_add_commands() {
        let rendered = render_user_data(&hostile());
        let config: LaunchUserData = serde_yaml_ng::from_str(&rendered).unwrap();
        assert_eq!(
            config.runcmd,
            vec![vec![
                LAUNCH_SCRIPT_PATH.to_string(),
                LAUNCH_DATA_PATH.to_string()
            ]]
        );
        assert_eq!(config.write_files.len(), 2);
    }

    #[test]
    fn user_data_stays_well_under_novas_limit() {
        use base64::Engine;
        // The longest values the domain types let through, all escaped.
        let data = LaunchData {
            repo: format!("https://example.org/{}", "\\\"'".repeat(78)),
            git_ref: "a".repeat(200),
            url_path: "%".repeat(300),
            ..hostile()
        };
        let rendered = render_user_data(&data);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&rendered);
        // Nova takes at most 65535 bytes of base64; keep half of it free.
        assert!(
            encoded.len() < 32 * 1024,
            "user data is {} bytes in base64",
            encoded.len()
        );
    }
}
