//! `image build --prebuild` on the builder VM: the pinned repositories'
//! part of the build script (`cloud-init/build-pinned.sh`) and the image
//! namer (`cloud-init/image_name.py`), both taken from the rendered user
//! data and run in a sandbox: stub `git` and `jupyter-repo2docker` record
//! how they were called, `python3` and `bash` are the real ones.

use stackbinder::cloud_init::render_base_image;
use stackbinder::cloud_init::{IMAGE_DATA_PATH, IMAGE_NAME_PATH, IMAGE_PINNED_PATH};
use stackbinder::config::{ImageConfig, PinnedRepoConfig};
use stackbinder::domain::{GitRef, RepoSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const COURSE: &str = "https://github.com/binder-examples/requirements";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const OTHER: &str = "https://gitlab.com/group/sub/project.git";
const PINNED_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Stand-in for git: records each call, resolves any ref to COMMIT, and
/// fails for a repository whose URL says "unreachable".
const GIT_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$*" >>"$SANDBOX/git-calls"
case "$3" in *unreachable*) echo "fatal: unable to access '$3'" >&2; exit 128 ;; esac
printf '0123456789abcdef0123456789abcdef01234567\trefs/heads/%s\n' "$4"
"#;

/// Stand-in for repo2docker: records each call, one line of arguments
/// separated by spaces, and fails for a repository that says "broken".
const R2D_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$*" >>"$SANDBOX/r2d-calls"
case "${!#}" in *broken*) echo "Error during build" >&2; exit 1 ;; esac
"#;

/// What build-image.sh gives the library; `step` is what a failure says.
const CALLER: &str = r#"set -Eeuo pipefail
step=starting
say() { step=$1; printf 'say: %s\n' "$1"; }
as_ubuntu() { "$@"; }
trap 'printf "FAILED: %s\n" "$step"; exit 1' ERR
. "$SANDBOX/build-pinned.sh"
build_pinned "$SANDBOX/image.json" "$SANDBOX/bin/jupyter-repo2docker" "$SANDBOX/image_name.py"
echo OK
"#;

fn pin(repo: &str, git_ref: &str) -> PinnedRepoConfig {
    PinnedRepoConfig {
        repo: RepoSpec::parse(repo).unwrap(),
        git_ref: GitRef::parse(git_ref).unwrap(),
    }
}

/// A file the rendered base-image cloud-config writes.
fn written(user_data: &str, path: &str) -> String {
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(user_data).unwrap();
    config["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == Some(path))
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("the user data writes {path}"))
        .to_owned()
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Run {
    stdout: String,
    ok: bool,
    git: Vec<String>,
    r2d: Vec<String>,
}

/// Run the pinned build of `pinned`, as rendered, in a fresh sandbox.
fn run(pinned: &[PinnedRepoConfig]) -> Run {
    let sandbox = tempfile::tempdir().unwrap();
    let dir = sandbox.path();
    let user_data = render_base_image(&ImageConfig::default(), pinned);
    for (path, file) in [
        (IMAGE_PINNED_PATH, "build-pinned.sh"),
        (IMAGE_NAME_PATH, "image_name.py"),
        (IMAGE_DATA_PATH, "image.json"),
    ] {
        std::fs::write(dir.join(file), written(&user_data, path)).unwrap();
    }
    let bin: PathBuf = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    executable(&bin.join("git"), GIT_STUB);
    executable(&bin.join("jupyter-repo2docker"), R2D_STUB);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-c", CALLER])
        .env("SANDBOX", dir)
        .env("PATH", path)
        .output()
        .expect("bash runs");
    let lines = |file: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    Run {
        stdout: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        ok: out.status.success(),
        git: lines("git-calls"),
        r2d: lines("r2d-calls"),
    }
}

#[test]
fn each_pinned_repository_is_resolved_named_as_binderhub_names_it_and_built() {
    // Act: a branch to resolve, and a full commit id taken as it is.
    let run = run(&[pin(COURSE, "main"), pin(OTHER, PINNED_COMMIT)]);

    // Assert
    assert!(run.ok, "{}", run.stdout);
    assert!(run.stdout.ends_with("OK\n"), "{}", run.stdout);
    assert_eq!(
        run.git,
        [format!("ls-remote -- {COURSE} main")],
        "only the branch is resolved"
    );
    assert_eq!(
        run.r2d,
        [
            format!(
                "--no-run --user-id=1000 --user-name=jovyan --image-name binder-2dexamples-2drequirements-55ab5c:{COMMIT} --ref {COMMIT} -- {COURSE}"
            ),
            format!(
                "--no-run --user-id=1000 --user-name=jovyan --image-name https-3a-2f-2fgitlab-2ecom-2fgroup-2fsub-2fproject-2egit-8a355c:{PINNED_COMMIT} --ref {PINNED_COMMIT} -- {OTHER}"
            ),
        ]
    );
    assert!(
        run.stdout
            .contains(&format!("say: pre-building {COURSE} at main ({COMMIT}) as binder-2dexamples-2drequirements-55ab5c:{COMMIT}")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_pinned_repository_that_fails_is_named_and_stops_the_build() {
    let unreachable = "https://example.org/unreachable/course";
    let run_unreachable = run(&[pin(unreachable, "main"), pin(COURSE, "main")]);
    assert!(!run_unreachable.ok);
    assert!(
        run_unreachable
            .stdout
            .contains(&format!("FAILED: resolving main of {unreachable}")),
        "{}",
        run_unreachable.stdout
    );
    assert!(run_unreachable.r2d.is_empty(), "nothing is built after it");

    let broken = "https://github.com/someone/broken-course";
    let run_broken = run(&[pin(broken, "v2")]);
    assert!(!run_broken.ok);
    assert!(
        run_broken
            .stdout
            .contains(&format!("FAILED: pre-building {broken} at v2 ({COMMIT})")),
        "{}",
        run_broken.stdout
    );
}

#[test]
fn without_pinned_repositories_nothing_is_resolved_or_built() {
    let run = run(&[]);
    assert!(run.ok, "{}", run.stdout);
    assert!(run.git.is_empty() && run.r2d.is_empty());
}

/// `python3 cloud-init/image_name.py <repo-url> <commit>`.
fn image_name(repo: &str, commit: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("cloud-init/image_name.py");
    let out = Command::new("python3")
        .arg(script)
        .args([repo, commit])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

#[test]
fn image_names_are_the_ones_binderhub_derives() {
    // GitHub: the build slug is <owner>-<name>, `.git` dropped; `-` and `_`
    // are escaped, then every `_` becomes `-` and all is lower case.
    assert_eq!(
        image_name(COURSE, COMMIT),
        format!("binder-2dexamples-2drequirements-55ab5c:{COMMIT}")
    );
    assert_eq!(
        image_name("https://github.com/Org_Name/My_Repo.git", "abc"),
        "org-5fname-2dmy-5frepo-a8b8d0:abc"
    );
    // Any other git host: the build slug is the URL itself.
    assert_eq!(
        image_name(OTHER, "deadbeef"),
        "https-3a-2f-2fgitlab-2ecom-2fgroup-2fsub-2fproject-2egit-8a355c:deadbeef"
    );
    // Non-ASCII: each UTF-8 byte escaped.
    assert_eq!(
        image_name("https://example.org/ä/x", "1"),
        "https-3a-2f-2fexample-2eorg-2f-c3-a4-2fx-2acc0e:1"
    );
}
