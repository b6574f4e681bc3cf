//! A class starts: many students press Launch at the same moment and watch
//! their status pages. Every launch must reach `ready`, and no VM's report
//! may be turned away on the way: in the demo, 300 students lost 5 launches
//! to reports answered "database is locked" (a callback's transaction read
//! before it wrote, and SQLite refuses that upgrade at once under
//! contention) that the simulated VMs gave up on after five quick tries.
//! The VMs' consoles say what became of each report, as a real VM's
//! `launch.sh` does on its console.

use crate::helpers::*;
use futures_util::future::join_all;
use serde_json::Value;
use stackbinder::cloud::Cloud;
use std::time::Duration;
use tokio::time::Instant;

/// Enough students to make the reports of their VMs and their status
/// pages contend for the database at once, few enough for two cores.
const STUDENTS: usize = 40;

/// How often a status page asks (its fallback poll; the live page streams).
const POLL: Duration = Duration::from_millis(250);

/// Watch the status of one student's VM until it settles (bounded).
async fn watch(student: &Browser) -> Value {
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let response = student.api_vm().await;
        if response.status().is_success() {
            let view: Value = response.json().await.expect("/api/vm answers JSON");
            if matches!(view["state"].as_str(), Some("ready" | "failed")) {
                return view;
            }
            if Instant::now() > deadline {
                return view;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_start_loses_no_launch() {
    // Arrange: the students are logged in and registered.
    let app = spawn_app().await;
    let students: Vec<Browser> = (0..STUDENTS).map(|_| app.new_browser()).collect();
    join_all(
        students
            .iter()
            .enumerate()
            .map(|(i, s)| async move { s.login_registered(&format!("student{i}")).await }),
    )
    .await;

    // Act: everybody presses Launch at once, then watches.
    let launched = join_all(students.iter().map(|s| s.launch(REPO, "", ""))).await;
    for response in &launched {
        assert_is_redirect_to(response, "/VM_status");
    }
    let views = join_all(students.iter().map(watch)).await;

    // Assert
    let lost: Vec<String> = views
        .iter()
        .filter(|v| v["state"] != "ready")
        .map(|v| {
            format!(
                "{} {} ({}): {}",
                v["name"], v["state"], v["progress"], v["error"]
            )
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {STUDENTS} launches did not become ready:\n{}",
        lost.len(),
        lost.join("\n")
    );
    let mut turned_away = Vec::new();
    for vm in app.store().list_vms(false).await.unwrap() {
        let server = vm.server_id.expect("a ready VM has a server");
        let console = app.cloud.console_output(&server, 10_000).await.unwrap();
        turned_away.extend(
            console
                .lines()
                .filter(|l| l.contains("not taken") || l.contains("refused a report"))
                .map(|l| format!("{}: {l}", vm.owner_login)),
        );
    }
    assert!(
        turned_away.is_empty(),
        "{} reports were turned away:\n{}",
        turned_away.len(),
        turned_away.join("\n")
    );
}
