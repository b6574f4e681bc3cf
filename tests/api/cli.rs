//! The real `stackbinder` binary: `users` and `vm` commands against a
//! database the tests prepare, and the start-up checks of `demo`.

use stackbinder::domain::{GithubId, Login, VmState};
use stackbinder::store::Store;
use std::process::{Command, Output};
use tempfile::TempDir;

/// A database with one logged-in user, and a way to run the binary on it.
struct Cli {
    dir: TempDir,
    store: Store,
}

impl Cli {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&Self::url(&dir)).await.unwrap();
        store
            .record_login(GithubId(4242), &Login::parse("alice").unwrap())
            .await
            .unwrap();
        Self { dir, store }
    }

    fn url(dir: &TempDir) -> String {
        format!("sqlite://{}", dir.path().join("cli.db").display())
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stackbinder"))
            .args(args)
            .env("STACKBINDER_DATABASE__URL", Self::url(&self.dir))
            .env("STACKBINDER_SERVER__BIND", "127.0.0.1:0")
            .env_remove("STACKBINDER_CONFIG")
            .output()
            .expect("the binary runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "stackbinder {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "stackbinder {args:?} should have failed"
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

#[tokio::test]
async fn users_add_list_and_remove_change_the_allowlist() {
    // Arrange
    let cli = Cli::new().await;
    let alice = Login::parse("alice").unwrap();

    // Act + Assert: a known user is registered at once, an unknown one invited.
    assert!(
        cli.ok(&["users", "add", "alice", "bob"])
            .contains("bob: invited")
    );
    assert!(
        cli.store
            .user_by_login(&alice)
            .await
            .unwrap()
            .unwrap()
            .is_registered()
    );
    let listing = cli.ok(&["users", "list"]);
    assert!(
        listing.contains("alice") && listing.contains("bob"),
        "{listing}"
    );

    cli.ok(&["users", "remove", "alice"]);
    assert!(
        !cli.store
            .user_by_login(&alice)
            .await
            .unwrap()
            .unwrap()
            .is_registered()
    );
    assert!(
        cli.fails(&["users", "add", "not a login"])
            .contains("not a login")
    );
}

#[tokio::test]
async fn vm_start_show_list_and_delete_go_through_the_store() {
    // Arrange
    let cli = Cli::new().await;
    cli.ok(&["users", "add", "alice"]);

    // Act: record a launch
    let started = cli.ok(&[
        "vm",
        "start",
        "--user",
        "alice",
        "--repo",
        "https://github.com/binder-examples/conda",
        "--ref",
        "main",
    ]);

    // Assert
    assert!(started.contains("recorded"), "{started}");
    let vm = cli
        .store
        .live_vm_of(GithubId(4242))
        .await
        .unwrap()
        .expect("a VM");
    assert_eq!(vm.state, VmState::Requested);
    assert_eq!(vm.repo, "https://github.com/binder-examples/conda");
    assert_eq!(vm.git_ref, "main");
    assert!(cli.ok(&["vm", "list"]).contains(&vm.id.to_string()));
    let shown = cli.ok(&["vm", "show", "alice"]);
    assert!(
        shown.contains("binder-examples/conda") && shown.contains("requested"),
        "{shown}"
    );

    // One VM per user, from the command line too.
    assert!(
        cli.fails(&["vm", "start", "--user", "alice"])
            .contains("already has VM")
    );
    // Hostile input is refused before it reaches the store.
    assert!(
        cli.fails(&["vm", "start", "--user", "alice", "--ref", "$(reboot)"])
            .contains("git ref")
    );

    cli.ok(&["vm", "delete", &vm.id.to_string()]);
    assert_eq!(
        cli.store.vm(vm.id).await.unwrap().unwrap().state,
        VmState::Deleting
    );
}

#[tokio::test]
async fn removing_a_user_deletes_their_vm() {
    let cli = Cli::new().await;
    cli.ok(&["users", "add", "alice"]);
    cli.ok(&["vm", "start", "--user", "alice"]);

    let out = cli.ok(&["users", "remove", "alice"]);

    assert!(out.contains("being deleted"), "{out}");
    let vm = cli.store.live_vm_of(GithubId(4242)).await.unwrap().unwrap();
    assert_eq!(vm.state, VmState::Deleting);
}

#[tokio::test]
async fn vm_start_refuses_users_who_are_not_registered() {
    let cli = Cli::new().await;
    assert!(
        cli.fails(&["vm", "start", "--user", "alice"])
            .contains("not a registered user")
    );
    assert!(
        cli.store
            .live_vm_of(GithubId(4242))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn demo_refuses_to_listen_beyond_loopback() {
    let cli = Cli::new().await;
    let err = cli.fails(&["demo", "--bind", "0.0.0.0:0"]);
    assert!(
        err.contains("server.bind") && err.contains("loopback"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_configuration_names_the_key_and_the_fix() {
    let cli = Cli::new().await;
    let out = Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["vm", "list"])
        .env("STACKBINDER_DATABASE__URL", Cli::url(&cli.dir))
        .env("STACKBINDER_LAUNCH__DEFAULT_REPO", "git@github.com:a/b.git")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        err.contains("launch.default_repo") && err.contains("fix:"),
        "{err}"
    );
}

/// A 0 where a positive number is needed stops the binary before it does
/// anything, naming the key and what to write instead, from the file as
/// from the environment.
#[tokio::test]
async fn a_zero_where_a_positive_number_is_needed_names_the_key_and_what_to_use() {
    let cli = Cli::new().await;
    let config = cli.dir.path().join("config.toml");
    std::fs::write(&config, "[provision]\nconcurrency = 0\n").unwrap();
    let err = cli.fails(&["--config", config.to_str().unwrap(), "vm", "list"]);
    assert!(
        err.contains(
            "configuration key `provision.concurrency`: must be positive, not 0\n  \
             fix: use a positive number of VMs, e.g. concurrency = 8"
        ),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["vm", "list"])
        .env("STACKBINDER_DATABASE__URL", Cli::url(&cli.dir))
        .env("STACKBINDER_CLOUD__VOLUME_SIZE_GB", "0")
        .env_remove("STACKBINDER_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        err.contains("`cloud.volume_size_gb`: must be positive, not 0")
            && err.contains("fix: set it to the boot volume size in GB, e.g. 150"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_without_github_credentials_says_what_to_set() {
    let cli = Cli::new().await;
    let err = cli.fails(&["serve"]);
    assert!(
        err.contains("github.client_id") && err.contains("callback URL"),
        "{err}"
    );
}

#[tokio::test]
async fn vm_start_takes_a_profile_and_an_ide() {
    let cli = Cli::new().await;
    cli.ok(&["users", "add", "alice"]);
    let config = cli.dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[profiles]]\nname = \"standard\"\ndescription = \"d\"\nflavor = \"m1.large\"\nvolume_size_gb = 100\n\
         [[profiles]]\nname = \"big\"\ndescription = \"d\"\nflavor = \"m1.xlarge\"\nvolume_size_gb = 300\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let start = ["--config", &config, "vm", "start", "--user", "alice"];

    let refused = cli.fails(&[&start[..], &["--profile", "huge"]].concat());
    assert!(refused.contains("no launch profile \"huge\""), "{refused}");
    cli.ok(&[&start[..], &["--profile", "big", "--ide", "vscode"]].concat());

    let vm = cli.store.live_vm_of(GithubId(4242)).await.unwrap().unwrap();
    assert_eq!(vm.profile.unwrap().as_str(), "big");
    assert_eq!(vm.url_path, "vscode");
    assert_eq!(vm.ide, Some(stackbinder::domain::Ide::Vscode));
    assert!(cli.ok(&["vm", "show", "alice"]).contains("profile     big"));
}
