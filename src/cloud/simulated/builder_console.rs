//! A simulated image builder: what cloud-init and `cloud-init/build-image.sh`
//! print on a real builder's console, read from the rendered user data, so
//! that `stackbinder image build` can be watched end to end without a cloud.

use crate::cloud_init::{IMAGE_BUILD_MARKER, IMAGE_DATA_PATH};

/// How the next simulated image build goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderScript {
    Succeeds,
    /// The build script fails at this step (`FAILED: <step>`).
    Fails(String),
    /// The VM never powers off (a hung apt, a build that never ends).
    NeverPowersOff,
}

/// The console lines of a build, in order, and whether the VM powers off
/// after them.
pub fn console_lines(user_data: &str, script: &BuilderScript) -> (Vec<String>, bool) {
    let mut lines = vec![
        "[    0.000000] Linux version 6.8.0-simulated (stackbinder simulator)".to_owned(),
        "Cloud-init v. 24.4 running 'modules:final'".to_owned(),
    ];
    let Some(settings) = image_settings(user_data) else {
        lines.push(format!(
            "{IMAGE_BUILD_MARKER} FAILED: no {IMAGE_DATA_PATH} in the user data"
        ));
        lines.push("reboot: Power down".into());
        return (lines, true);
    };
    let say = |s: &str| format!("stackbinder-build-image: {s}");
    lines.push(say("reading the settings"));
    lines.push(say(&format!(
        "configuring Docker with MTU {}",
        settings["docker_mtu"]
    )));
    lines.push(say(&format!(
        "installing jupyter-repo2docker {} into /opt/repo2docker",
        settings["repo2docker_version"].as_str().unwrap_or("?")
    )));
    if let BuilderScript::Fails(step) = script {
        lines.push(format!("{IMAGE_BUILD_MARKER} FAILED: {step}"));
        lines.push("reboot: Power down".into());
        return (lines, true);
    }
    lines.push(say("pre-building repositories"));
    for repo in settings["prebuild"].as_array().into_iter().flatten() {
        lines.push(say(&format!(
            "pre-building {}",
            repo.as_str().unwrap_or("?")
        )));
    }
    // What build-pinned.sh says; the simulator resolves no ref and names
    // no image, so it says which repository and ref it would build.
    for pin in settings["pinned"].as_array().into_iter().flatten() {
        let (repo, git_ref) = (
            pin["repo"].as_str().unwrap_or("?"),
            pin["ref"].as_str().unwrap_or("?"),
        );
        lines.push(say(&format!("resolving {git_ref} of {repo}")));
        lines.push(say(&format!("pre-building {repo} at {git_ref}")));
    }
    lines.push(say("cleaning up"));
    if *script == BuilderScript::NeverPowersOff {
        return (lines, false);
    }
    lines.push(format!("{IMAGE_BUILD_MARKER} OK"));
    lines.push("reboot: Power down".into());
    (lines, true)
}

/// The JSON settings the rendered base-image cloud-config writes.
fn image_settings(user_data: &str) -> Option<serde_json::Value> {
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(user_data).ok()?;
    let content = config["write_files"]
        .as_sequence()?
        .iter()
        .find(|f| f["path"].as_str() == Some(IMAGE_DATA_PATH))?["content"]
        .as_str()?;
    serde_json::from_str(content).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud_init::{ImageBuildVerdict, image_build_verdict, render_base_image};
    use crate::config::ImageConfig;

    #[test]
    fn a_simulated_build_prebuilds_the_configured_repositories_and_says_ok() {
        let user_data = render_base_image(&ImageConfig::default(), &[]);
        let (lines, powers_off) = console_lines(&user_data, &BuilderScript::Succeeds);
        assert!(powers_off);
        assert!(
            lines.iter().any(
                |l| l.ends_with("pre-building https://github.com/binder-examples/requirements")
            )
        );
        assert_eq!(
            image_build_verdict(&lines.join("\n")),
            ImageBuildVerdict::Succeeded
        );
    }

    #[test]
    fn a_failing_build_gives_its_step_and_user_data_without_settings_fails() {
        let user_data = render_base_image(&ImageConfig::default(), &[]);
        let (lines, _) = console_lines(&user_data, &BuilderScript::Fails("apt".into()));
        assert_eq!(
            image_build_verdict(&lines.join("\n")),
            ImageBuildVerdict::Failed("apt".into())
        );
        let (lines, _) = console_lines("#cloud-config\n{}", &BuilderScript::Succeeds);
        assert!(matches!(
            image_build_verdict(&lines.join("\n")),
            ImageBuildVerdict::Failed(_)
        ));
    }
}
