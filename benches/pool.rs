//! The warm pool (issue #16), in one run on the simulated cloud with the
//! demo's timings (`[simulator]` defaults: a real cloud's, scaled):
//!
//!     cargo bench --bench pool
//!     POOL_SIZE=8 cargo bench --bench pool
//!
//! stackbinder runs in this process (the application as `demo` runs it:
//! the simulated cloud, the demo login) with `[pool] size = POOL_SIZE` and
//! the launched repository pinned in `[pool] repos`. Once the pool is full
//! (`stackbinder_pool_ready` on `/metrics`), POOL_SIZE students press
//! Launch at once and take every pool VM, and one more launches the same
//! repository right after, when the pool is empty: a cold launch. Each
//! watches `/api/vm` until ready.
//!
//! Reported:
//! - click → ready of the pooled launches (p50, max) and of the cold one,
//!   and their ratio (goal: the pooled at least 4× faster);
//! - stackbinder's own share of a pooled launch: its click → ready less
//!   what the simulated VM itself takes for a prebuilt start (its clone
//!   and cached start): the claim, the answer to the VM's long-poll, the
//!   reports and the readiness probe (goal: under 1 s);
//! - the refill: from the claims until the pool is full again, and its
//!   rate in VMs per minute (a simulated boot alone takes `boot_seconds`
//!   times `time_scale`).

#[path = "../tests/support/web_app.rs"]
mod web_app;

use serde_json::Value;
use stackbinder::cloud::Cloud;
use stackbinder::cloud::simulated::{SimulatedCloud, Timings};
use stackbinder::config::{Config, PinnedRepoConfig};
use stackbinder::domain::{GitRef, RepoSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};
use web_app::{Browser, REPO, WebApp, csrf_from};

/// A launch, a fill or a refill not done within this long has failed.
const LIMIT: Duration = Duration::from_secs(120);
/// How often a student asks `/api/vm`: the resolution of click → ready.
const POLL: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() {
    let size: u32 = std::env::var("POOL_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut config = Config::defaults();
    config.pool.size = size;
    config.pool.repos = vec![PinnedRepoConfig {
        repo: RepoSpec::parse(REPO).expect("a repository"),
        git_ref: GitRef::head(),
    }];
    let timings = Timings::from_config(&config.simulator);
    println!(
        "warm pool benchmark: {} cores, pool of {size}, {} build",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    println!(
        "the simulated VM alone: {} s for a cold launch (boot, clone, build, start), {} s for a prebuilt start (clone, cached start)\n",
        secs(timings.cold_launch()),
        secs(timings.prebuilt_launch()),
    );
    let cloud = SimulatedCloud::new(timings.clone(), 64);
    let started = Instant::now();
    let app = WebApp::start(config, Arc::new(cloud) as Arc<dyn Cloud>, "student0", LIMIT).await;
    let mut students = Vec::new();
    for i in 1..=size {
        students.push(app.another_user(&format!("student{i}")).await);
    }
    let cold_student = app.another_user("latecomer").await;
    let filled = wait_for_pool(&app, size).await;
    println!(
        "the pool filled in {} s after the start",
        secs(filled - started)
    );

    // Every pool VM claimed at once, then one launch more on an empty pool.
    let claimed = Instant::now();
    let pooled: Vec<_> = students.iter().map(launch_and_wait).collect();
    let pooled = futures_util::future::join_all(pooled);
    let cold = async {
        // After the pooled clicks are in: the pool is empty now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        launch_and_wait(&cold_student).await
    };
    let (pooled, cold) = tokio::join!(pooled, cold);
    let refilled = wait_for_pool(&app, size).await;

    let (mut on_pool, others): (Vec<_>, Vec<_>) =
        pooled.into_iter().partition(|l| l.path == "pool");
    on_pool.sort_by_key(|l| l.took);
    if !others.is_empty() {
        println!(
            "{} of the {size} launches did not get a pool VM: {:?}",
            others.len(),
            others.iter().map(|l| &l.path).collect::<Vec<_>>()
        );
    }
    assert_eq!(cold.path, "cold", "the launch on an empty pool boots a VM");
    let Some(p50) = on_pool.get(on_pool.len() / 2).map(|l| l.took) else {
        panic!("no launch got a pool VM");
    };
    let max = on_pool.last().map_or(p50, |l| l.took);
    let own = p50.saturating_sub(timings.prebuilt_launch());
    let refill = refilled - claimed;
    println!("| launch | click → ready |");
    println!("|---|---|");
    println!(
        "| pooled, pinned repository ({} launches) | p50 {} s, max {} s |",
        on_pool.len(),
        secs(p50),
        secs(max)
    );
    println!("| cold, same repository | {} s |\n", secs(cold.took));
    println!(
        "ratio cold / pooled p50: {:.1}× (goal: at least 4×)",
        cold.took.as_secs_f64() / p50.as_secs_f64()
    );
    println!(
        "stackbinder's own share of a pooled launch (p50 less the VM's {} s): {} ms (goal: under 1000 ms)",
        secs(timings.prebuilt_launch()),
        own.as_millis()
    );
    println!(
        "refill: {size} VMs in {} s after the claims, {:.1} VMs per minute (one simulated boot: {} s)",
        secs(refill),
        f64::from(size) * 60.0 / refill.as_secs_f64(),
        secs(timings.boot)
    );
}

/// One launch as its owner saw it.
struct Launch {
    /// From the POST to the first `/api/vm` saying ready.
    took: Duration,
    /// `launch_path` of the ready VM: `pool` or `cold`.
    path: String,
}

/// Press Launch on the confirmation page of REPO and watch `/api/vm`
/// until the VM is ready.
async fn launch_and_wait(student: &Browser) -> Launch {
    let page = student.confirm_page(REPO, "", "").await;
    let csrf = csrf_from(&page.text().await.expect("the confirmation page"));
    let clicked = Instant::now();
    let response = student
        .post_form("/VM_start", &[("csrf", &csrf), ("giturl", REPO)])
        .await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::SEE_OTHER,
        "launched"
    );
    loop {
        let view: Value = student.api_vm_json().await;
        match view["state"].as_str() {
            Some("ready") => {
                return Launch {
                    took: clicked.elapsed(),
                    path: view["launch_path"].as_str().unwrap_or("?").to_owned(),
                };
            }
            Some("failed" | "deleted") => panic!("the launch failed: {view:#}"),
            _ => {}
        }
        assert!(
            clicked.elapsed() < LIMIT,
            "not ready in {LIMIT:?}: {view:#}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `/metrics` says `size` pool VMs are ready to be claimed.
async fn wait_for_pool(app: &WebApp, size: u32) -> Instant {
    let since = Instant::now();
    loop {
        let metrics = app.get("/metrics").await;
        let ready = metrics
            .lines()
            .find_map(|l| l.strip_prefix("stackbinder_pool_ready "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if ready.is_some_and(|n| n >= f64::from(size)) {
            return Instant::now();
        }
        assert!(
            since.elapsed() < LIMIT,
            "the pool did not fill in {LIMIT:?}: stackbinder_pool_ready is {ready:?} \
             (none: this build has no warm pool)"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}
