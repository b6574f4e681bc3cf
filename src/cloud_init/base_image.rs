//! User data for the image builder VM: `cloud-init/base-image.yaml` plus
//! the settings of `[image]` (and, for `image build --prebuild`, the pinned
//! repositories of `[pool] repos`) as a JSON file and the build script that
//! reads them. The settings travel as data, never as shell code.

use crate::config::{ImageConfig, PinnedRepoConfig};
use serde_yaml_ng::{Mapping, Value};

const BASE_IMAGE: &str = include_str!("../../cloud-init/base-image.yaml");
const BUILD_SCRIPT: &str = include_str!("../../cloud-init/build-image.sh");
const BUILD_PINNED: &str = include_str!("../../cloud-init/build-pinned.sh");
const IMAGE_NAME: &str = include_str!("../../cloud-init/image_name.py");

/// Where the settings land on the builder VM.
pub const IMAGE_DATA_PATH: &str = "/etc/stackbinder/image.json";
/// Where the build script lands (base-image.yaml's runcmd runs it).
pub const IMAGE_SCRIPT_PATH: &str = "/usr/local/sbin/stackbinder-build-image";
/// Where the build script finds the pinned repositories' build, which it
/// sources, and the image namer (`build-image.sh`'s `$lib`).
pub const IMAGE_PINNED_PATH: &str = "/usr/local/lib/stackbinder/build-pinned.sh";
pub const IMAGE_NAME_PATH: &str = "/usr/local/lib/stackbinder/image_name.py";
/// The console line that starts the build's verdict:
/// `STACKBINDER-IMAGE-BUILD: OK` or `STACKBINDER-IMAGE-BUILD: FAILED: <reason>`.
pub const IMAGE_BUILD_MARKER: &str = "STACKBINDER-IMAGE-BUILD:";

/// How an image build ended, as its console output tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageBuildVerdict {
    Succeeded,
    Failed(String),
    /// No verdict yet (or the VM died before it could give one).
    Unknown,
}

/// Read the verdict from the builder's console output (the last marker
/// wins: a console may hold an earlier boot's).
pub fn image_build_verdict(console: &str) -> ImageBuildVerdict {
    console
        .lines()
        .filter_map(|line| {
            let rest = line.split_once(IMAGE_BUILD_MARKER)?.1.trim();
            Some(match rest.strip_prefix("FAILED:") {
                Some(reason) => ImageBuildVerdict::Failed(reason.trim().to_owned()),
                None if rest == "OK" => ImageBuildVerdict::Succeeded,
                None => ImageBuildVerdict::Failed(rest.to_owned()),
            })
        })
        .next_back()
        .unwrap_or(ImageBuildVerdict::Unknown)
}

/// Render the builder VM's user data for these settings; `pinned` are the
/// repositories whose images go into the snapshot under the names BinderHub
/// would give them (`image build --prebuild`; empty without).
pub fn render_base_image(image: &ImageConfig, pinned: &[PinnedRepoConfig]) -> String {
    let mut config: Mapping =
        serde_yaml_ng::from_str(BASE_IMAGE).expect("cloud-init/base-image.yaml is a YAML mapping");
    let settings = serde_json::json!({
        "prebuild": image.prebuild.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "docker_mtu": image.docker_mtu,
        "repo2docker_version": image.repo2docker_version,
        "pinned": pinned
            .iter()
            .map(|p| serde_json::json!({ "repo": p.repo.as_str(), "ref": p.git_ref.as_str() }))
            .collect::<Vec<_>>(),
    });
    let files = [
        (
            IMAGE_DATA_PATH,
            "0644",
            serde_json::to_string_pretty(&settings).expect("settings serialize"),
        ),
        (IMAGE_SCRIPT_PATH, "0755", BUILD_SCRIPT.to_owned()),
        (IMAGE_PINNED_PATH, "0644", BUILD_PINNED.to_owned()),
        (IMAGE_NAME_PATH, "0644", IMAGE_NAME.to_owned()),
    ];
    let write_files = config
        .entry("write_files".into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    let Value::Sequence(write_files) = write_files else {
        panic!("write_files in base-image.yaml is a list");
    };
    for (path, permissions, content) in files {
        let mut file = Mapping::new();
        file.insert("path".into(), path.into());
        file.insert("owner".into(), "root:root".into());
        file.insert("permissions".into(), permissions.into());
        file.insert("content".into(), content.into());
        write_files.push(Value::Mapping(file));
    }
    let yaml = serde_yaml_ng::to_string(&config).expect("cloud-config serializes");
    format!("#cloud-config\n{yaml}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RepoSpec;

    fn file<'a>(config: &'a Value, path: &str) -> &'a str {
        config["write_files"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str() == Some(path))
            .and_then(|f| f["content"].as_str())
            .unwrap_or_else(|| panic!("no {path} in write_files"))
    }

    #[test]
    fn the_rendered_image_config_installs_builds_and_powers_off() {
        let rendered = render_base_image(&ImageConfig::default(), &[]);
        assert!(rendered.starts_with("#cloud-config\n"));
        let config: Value = serde_yaml_ng::from_str(&rendered).unwrap();
        let packages: Vec<&str> = config["packages"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for needed in ["docker.io", "docker-buildx", "git", "python3-venv"] {
            assert!(packages.contains(&needed), "{needed} is installed");
        }
        assert_eq!(config["power_state"]["mode"], "poweroff");
        assert_eq!(config["power_state"]["condition"], true);
        assert_eq!(
            config["runcmd"],
            serde_yaml_ng::from_str::<Value>(&format!(
                "[[{IMAGE_SCRIPT_PATH}, {IMAGE_DATA_PATH}]]"
            ))
            .unwrap()
        );
        let settings: serde_json::Value =
            serde_json::from_str(file(&config, IMAGE_DATA_PATH)).unwrap();
        assert_eq!(settings["docker_mtu"], 1400);
        assert_eq!(
            settings["prebuild"][0],
            "https://github.com/binder-examples/requirements"
        );
        assert_eq!(file(&config, IMAGE_SCRIPT_PATH), BUILD_SCRIPT);
    }

    #[test]
    fn hostile_settings_stay_data() {
        let image = ImageConfig {
            prebuild: vec![
                RepoSpec::parse("https://example.org/a%27%3B%24%28reboot%29%3B%60id%60").unwrap(),
                RepoSpec::parse("https://example.org/b%22x%3A%5By%5D%7Cz%3Ew").unwrap(),
            ],
            docker_mtu: 1450,
            repo2docker_version: "1.0\nruncmd: [[reboot]]\n'\"".into(),
            ..ImageConfig::default()
        };
        let pinned = [PinnedRepoConfig {
            repo: RepoSpec::parse("https://example.org/c%27%24%28id%29").unwrap(),
            git_ref: crate::domain::GitRef::parse("release/v1+build-2").unwrap(),
        }];
        let rendered = render_base_image(&image, &pinned);
        let config: Value = serde_yaml_ng::from_str(&rendered).unwrap();
        assert_eq!(config["runcmd"].as_sequence().unwrap().len(), 1);
        assert_eq!(config["write_files"].as_sequence().unwrap().len(), 4);
        let settings: serde_json::Value =
            serde_json::from_str(file(&config, IMAGE_DATA_PATH)).unwrap();
        assert_eq!(settings["repo2docker_version"], image.repo2docker_version);
        assert_eq!(settings["prebuild"][0], image.prebuild[0].as_str());
        assert_eq!(settings["prebuild"][1], image.prebuild[1].as_str());
        assert_eq!(settings["docker_mtu"], 1450);
        assert_eq!(settings["pinned"][0]["repo"], pinned[0].repo.as_str());
        assert_eq!(settings["pinned"][0]["ref"], pinned[0].git_ref.as_str());
    }

    #[test]
    fn the_verdict_comes_from_the_last_marker_on_the_console() {
        assert_eq!(image_build_verdict(""), ImageBuildVerdict::Unknown);
        assert_eq!(
            image_build_verdict(
                "[  1.0] boot\nSTACKBINDER-IMAGE-BUILD: OK\n[ 9.0] reboot: Power down"
            ),
            ImageBuildVerdict::Succeeded
        );
        assert_eq!(
            image_build_verdict(
                "x STACKBINDER-IMAGE-BUILD: FAILED: pre-building https://example.org/a\n"
            ),
            ImageBuildVerdict::Failed("pre-building https://example.org/a".into())
        );
        assert_eq!(
            image_build_verdict(
                "STACKBINDER-IMAGE-BUILD: FAILED: one\nSTACKBINDER-IMAGE-BUILD: OK"
            ),
            ImageBuildVerdict::Succeeded
        );
    }

    #[test]
    fn the_build_script_speaks_the_markers_the_verdict_reads() {
        assert!(BUILD_SCRIPT.contains("marker=STACKBINDER-IMAGE-BUILD"));
        assert!(BUILD_SCRIPT.contains("marker OK"));
        assert!(BUILD_SCRIPT.contains("marker \"FAILED: $step\""));
        assert_eq!(IMAGE_BUILD_MARKER, "STACKBINDER-IMAGE-BUILD:");
    }
}
