//! `stackbinder vm start|list|show|delete` (the real binary) on the
//! database of a running stackbinder whose driver does the work on the dev
//! cloud, as an operator would use them next to `serve`.

use crate::dev::{self, Rest};
use crate::web::App;
use stackbinder::domain::{GithubId, Login, VmState};
use stackbinder::store::Store;
use std::time::Duration;

/// Asynchronously: the server under test runs on this test's runtime.
async fn run(app: &App, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(args)
        .env_remove("STACKBINDER_CONFIG")
        .env(
            "STACKBINDER_DATABASE__URL",
            format!(
                "sqlite://{}",
                app.dir.path().join("stackbinder.db").display()
            ),
        )
        .envs(dev::cloud_env())
        .output()
        .await
        .expect("the binary runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_vm_start_list_show_and_delete_drive_the_running_server() {
    let _one = dev::exclusive().await;
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    admin.purge().await;
    let app = App::spawn("web-user", |_| {}).await;
    let store = Store::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("stackbinder.db").display()
    ))
    .await
    .unwrap();
    store
        .record_login(GithubId(777), &Login::parse("dave").unwrap())
        .await
        .unwrap();
    let (ok, said) = run(&app, &["users", "add", "dave"]).await;
    assert!(ok, "{said}");

    let (ok, said) = run(&app, &["vm", "start", "--user", "dave"]).await;
    assert!(ok && said.contains("recorded"), "{said}");
    let vm = dev::eventually("dave's VM to build", Duration::from_secs(180), || async {
        let vm = store.live_vm_of(GithubId(777)).await.unwrap()?;
        assert_ne!(vm.state, VmState::Failed, "{:?}", vm.last_error);
        (vm.state == VmState::Building).then_some(vm)
    })
    .await;
    let server_id = vm.server_id.clone().expect("a server");
    assert_eq!(admin.server(&server_id).await["name"], "sbconf-dave");

    let (ok, listing) = run(&app, &["vm", "list"]).await;
    assert!(ok, "{listing}");
    assert!(
        listing.contains(&vm.id.to_string()) && listing.contains("building"),
        "{listing}"
    );
    let (ok, shown) = run(&app, &["vm", "show", "dave"]).await;
    assert!(ok, "{shown}");
    assert!(shown.contains(&server_id), "{shown}");
    let address = vm.floating_ip.clone().expect("a floating IP");
    assert!(shown.contains(&format!("address     {address}")), "{shown}");

    let (ok, said) = run(&app, &["vm", "delete", "dave", "--wait"]).await;
    assert!(ok, "{said}");
    assert!(
        said.contains("deleted: server, volumes and floating IP are gone"),
        "{said}"
    );
    assert!(
        !admin
            .exists("compute", &format!("/servers/{server_id}"))
            .await
    );
    let (servers, volumes, fips) = admin.inventory().await;
    assert!(
        servers.is_empty() && volumes.is_empty() && fips.is_empty(),
        "left behind: {servers:?} {volumes:?} {fips:?}"
    );
}
