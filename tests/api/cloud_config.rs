//! The cloud-configs stackbinder renders are valid for cloud-init itself:
//! each is checked with `cloud-init schema` (Debian's `cloud-init`
//! package, which CI installs). Where cloud-init is missing the test is
//! skipped, except under CI=true, where that is a failure.

use stackbinder::cloud_init::{BootData, PinnedRepo, render_base_image, render_boot_data};
use stackbinder::config::ImageConfig;
use stackbinder::domain::{RepoSpec, VmId};
use std::path::Path;
use std::process::Command;

fn cloud_init_available() -> bool {
    let found = Command::new("cloud-init").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must install cloud-init (apt-get install cloud-init) to validate the cloud-configs"
        );
        eprintln!("skipped: cloud-init is not installed");
    }
    found
}

fn assert_valid(name: &str, text: &str, dir: &Path) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&path)
        .output()
        .expect("cloud-init runs");
    assert!(
        out.status.success(),
        "cloud-init schema refuses {name}:\n{}{}\n--- {name} ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn boot(prebuild: &[(&str, &str)]) -> BootData {
    let base: url::Url = "https://binder.example.org/api/vm/".parse().unwrap();
    BootData {
        vm_id: VmId::new(),
        callback_url: base.join("callback").unwrap(),
        assignment_url: base.join("assignment").unwrap(),
        callback_secret: "secret".into(),
        jupyter_port: 8888,
        prebuild: prebuild
            .iter()
            .map(|(repo, git_ref)| PinnedRepo {
                repo: (*repo).into(),
                git_ref: (*git_ref).into(),
            })
            .collect(),
    }
}

#[test]
fn every_rendered_cloud_config_passes_cloud_init_schema() {
    if !cloud_init_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let examples = [
        (
            "launch.yaml",
            render_boot_data(&boot(&[(
                "https://github.com/binder-examples/requirements",
                "HEAD",
            )])),
        ),
        (
            "launch-hostile.yaml",
            render_boot_data(&boot(&[(
                "https://example.org/a'; reboot; echo '$(id)`x`\nruncmd:",
                "--upload-pack=x\n- [rm, -rf, /]\"\n#cloud-config",
            )])),
        ),
        (
            "base-image.yaml",
            render_base_image(&ImageConfig::default()),
        ),
        (
            "base-image-hostile.yaml",
            render_base_image(&ImageConfig {
                prebuild: vec![
                    RepoSpec::parse("https://example.org/a%27%3B%24%28reboot%29%3B%60id%60")
                        .unwrap(),
                    RepoSpec::parse("https://example.org/b%22x%3A%5By%5D%7Cz%3Ew").unwrap(),
                ],
                docker_mtu: 1450,
                repo2docker_version: "1.0\nruncmd: [[reboot]]\n'\"".into(),
                ..ImageConfig::default()
            }),
        ),
        (
            "base-image-template.yaml",
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("cloud-init/base-image.yaml"),
            )
            .unwrap(),
        ),
    ];
    for (name, text) in examples {
        assert_valid(name, &text, dir.path());
    }
}

#[test]
fn the_schema_check_can_fail() {
    if !cloud_init_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "#cloud-config\npower_state:\n  mode: sleep\n").unwrap();
    let out = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "cloud-init schema accepts anything");
}
