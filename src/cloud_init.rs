//! User data for a VM: a cloud-config that writes its boot data as a JSON
//! file and a fixed script that reads it, then asks stackbinder for the
//! VM's job (`GET /api/vm/assignment`). Nothing about the owner is in the
//! user data, and what the user typed reaches the VM only as JSON data
//! from that answer, never as shell code.

mod base_image;

pub use base_image::{
    IMAGE_BUILD_MARKER, IMAGE_DATA_PATH, IMAGE_SCRIPT_PATH, ImageBuildVerdict, image_build_verdict,
    render_base_image,
};

use crate::domain::{Progress, VmId};
use serde::{Deserialize, Serialize};
use url::Url;

/// Where the boot data lands on the VM; the script writes the assignment
/// next to it.
pub const BOOT_DATA_PATH: &str = "/etc/stackbinder/boot.json";
/// Where the launch script lands on the VM.
pub const LAUNCH_SCRIPT_PATH: &str = "/usr/local/sbin/stackbinder-launch";
const LAUNCH_SCRIPT: &str = include_str!("../cloud-init/launch.sh");
/// Where the image namer lands on the VM: the name BinderHub would give an
/// environment, which the script builds ahead under and looks for.
pub const IMAGE_NAMER_PATH: &str = "/usr/local/lib/stackbinder/image_name.py";
const IMAGE_NAMER: &str = include_str!("../cloud-init/image_name.py");

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

/// What a VM knows once it has its job: its boot data and its assignment,
/// merged as the launch script's helper reads them, with the secret that
/// acts for it from then on.
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
    pub gpu: bool,
    /// The owner's home volume, mounted at /home/jovyan/work.
    pub home_volume_id: Option<String>,
}

impl LaunchData {
    pub fn new(boot: &BootData, assignment: &Assignment) -> Self {
        Self {
            vm_id: boot.vm_id,
            login: assignment.login.clone(),
            repo: assignment.repo.clone(),
            git_ref: assignment.git_ref.clone(),
            url_path: assignment.url_path.clone(),
            jupyter_port: boot.jupyter_port,
            jupyter_token: assignment.jupyter_token.clone(),
            callback_url: boot.callback_url.clone(),
            callback_secret: assignment
                .callback_secret
                .clone()
                .unwrap_or_else(|| boot.callback_secret.clone()),
            gpu: assignment.gpu,
            home_volume_id: assignment.home_volume_id.clone(),
        }
    }
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

/// The user data of a VM, a cloud-config: its files and the one command
/// that runs the script on the boot data.
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

/// Render the user data for one VM, pool VM or not.
pub fn render_boot_data(data: &BootData) -> String {
    let config = LaunchUserData {
        write_files: vec![
            WriteFile {
                path: BOOT_DATA_PATH.into(),
                owner: "root:root".into(),
                permissions: "0600".into(),
                content: serde_json::to_string_pretty(data).expect("boot data serializes"),
            },
            WriteFile {
                path: LAUNCH_SCRIPT_PATH.into(),
                owner: "root:root".into(),
                permissions: "0755".into(),
                content: LAUNCH_SCRIPT.into(),
            },
            WriteFile {
                path: IMAGE_NAMER_PATH.into(),
                owner: "root:root".into(),
                permissions: "0644".into(),
                content: IMAGE_NAMER.into(),
            },
        ],
        runcmd: vec![vec![LAUNCH_SCRIPT_PATH.into(), BOOT_DATA_PATH.into()]],
    };
    let yaml = serde_yaml_ng::to_string(&config).expect("cloud-config serializes");
    format!("#cloud-config\n{yaml}")
}

/// Read the boot data back out of user data, as the VM does.
pub fn parse_boot_data(user_data: &str) -> Option<BootData> {
    let config: LaunchUserData = serde_yaml_ng::from_str(user_data).ok()?;
    let file = config
        .write_files
        .iter()
        .find(|f| f.path == BOOT_DATA_PATH)?;
    serde_json::from_str(&file.content).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> BootData {
        BootData {
            vm_id: VmId::new(),
            callback_url: Url::parse("http://127.0.0.1:8080/api/vm/callback").unwrap(),
            assignment_url: Url::parse("http://127.0.0.1:8080/api/vm/assignment").unwrap(),
            callback_secret: "s3cret".into(),
            jupyter_port: 8888,
            prebuild: vec![PinnedRepo {
                repo: "https://github.com/a/b'; reboot; echo '$(id)`x`\nruncmd:".into(),
                git_ref: "--upload-pack=x\"\n- [rm, -rf, /]".into(),
            }],
        }
    }

    #[test]
    fn user_data_is_a_cloud_config_that_round_trips() {
        let data = hostile();
        let rendered = render_boot_data(&data);
        assert!(rendered.starts_with("#cloud-config\n"));
        assert_eq!(parse_boot_data(&rendered), Some(data));
    }

    #[test]
    fn hostile_values_cannot_add_commands() {
        let rendered = render_boot_data(&hostile());
        let config: LaunchUserData = serde_yaml_ng::from_str(&rendered).unwrap();
        assert_eq!(
            config.runcmd,
            vec![vec![
                LAUNCH_SCRIPT_PATH.to_string(),
                BOOT_DATA_PATH.to_string()
            ]]
        );
        assert_eq!(config.write_files.len(), 3);
    }

    #[test]
    fn user_data_stays_well_under_novas_limit() {
        use base64::Engine;
        // A few pinned repositories with the longest values
        // the domain types let through, all escaped.
        let pinned = PinnedRepo {
            repo: format!("https://example.org/{}", "\\\"'".repeat(78)),
            git_ref: "a".repeat(200),
        };
        let data = BootData {
            prebuild: vec![pinned; 4],
            ..hostile()
        };
        let rendered = render_boot_data(&data);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&rendered);
        // Nova takes at most 65535 bytes of base64; keep a quarter of it
        // free (the agent and its prebuild made the script longer).
        assert!(
            encoded.len() < 48 * 1024,
            "user data is {} bytes in base64",
            encoded.len()
        );
    }

    #[test]
    fn the_rotated_secret_replaces_the_boot_secret() {
        let boot = hostile();
        let assignment = Assignment {
            login: "grace".into(),
            repo: "https://github.com/a/b".into(),
            git_ref: "HEAD".into(),
            url_path: String::new(),
            jupyter_token: "tok".into(),
            gpu: false,
            home_volume_id: None,
            callback_secret: None,
        };
        assert_eq!(
            LaunchData::new(&boot, &assignment).callback_secret,
            "s3cret"
        );
        let rotated = Assignment {
            callback_secret: Some("n3w".into()),
            ..assignment
        };
        assert_eq!(LaunchData::new(&boot, &rotated).callback_secret, "n3w");
    }
}
