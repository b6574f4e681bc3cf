//! What both modes measure, through stackbinder's web pages as students
//! use them: the pool filling, every pool VM claimed at once, a launch on
//! the empty pool, and the refill.

use crate::web_app::{Browser, REPO, WebApp, csrf_from};
use serde_json::Value;
use stackbinder::config::{Config, PinnedRepoConfig};
use stackbinder::domain::{GitRef, RepoSpec};
use std::time::{Duration, Instant};

/// How often a student asks `/api/vm`: the resolution of click → ready.
const POLL: Duration = Duration::from_millis(20);

/// `[pool] size` and the launched repository pinned in `[pool] repos`.
pub fn with_pool(config: &mut Config, size: u32) {
    config.pool.size = size;
    config.pool.repos = vec![PinnedRepoConfig {
        repo: RepoSpec::parse(REPO).expect("a repository"),
        git_ref: GitRef::head(),
    }];
}

/// One launch as its owner saw it.
pub struct Launch {
    /// The VM's id (`/api/vm`), which a claimed pool VM keeps.
    pub id: String,
    /// From the POST to the first `/api/vm` saying ready.
    pub took: Duration,
    /// `launch_path` of the ready VM: `pool` or `cold`.
    pub path: String,
    /// `/api/vm` said the environment was built ahead (a pool VM's pinned
    /// repository).
    pub prebuilt: bool,
    pub clicked: Instant,
}

/// Everything one run measured.
pub struct Run {
    pub size: u32,
    /// From the start of stackbinder until the pool was full.
    pub filled: Duration,
    /// The launches that got a pool VM, fastest first.
    pub pooled: Vec<Launch>,
    /// Launches of the claim round that got none (a pool VM lost).
    pub missed: Vec<Launch>,
    pub cold: Launch,
    /// From the claims until the pool was full again.
    pub refill: Duration,
}

impl Run {
    /// The median pooled launch.
    pub fn p50(&self) -> &Launch {
        self.pooled
            .get(self.pooled.len() / 2)
            .expect("some launch got a pool VM")
    }
}

/// Fill the pool, claim all of it at once, launch once more on the empty
/// pool, and wait for the refill; `started` is when stackbinder started,
/// `limit` the longest any of it may take.
pub async fn run(app: &WebApp, size: u32, started: Instant, limit: Duration) -> Run {
    let mut students = Vec::new();
    for i in 1..=size {
        students.push(app.another_user(&format!("student{i}")).await);
    }
    let cold_student = app.another_user("latecomer").await;
    let filled = wait_for_pool(app, size, limit).await - started;

    let claimed = Instant::now();
    let pooled = futures_util::future::join_all(students.iter().map(|s| launch_and_wait(s, limit)));
    let cold = async {
        // After the pooled clicks are in: the pool is empty now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        launch_and_wait(&cold_student, limit).await
    };
    let (pooled, cold) = tokio::join!(pooled, cold);
    let refill = wait_for_pool(app, size, limit).await - claimed;
    let (mut pooled, missed): (Vec<_>, Vec<_>) = pooled.into_iter().partition(|l| l.path == "pool");
    pooled.sort_by_key(|l| l.took);
    assert!(!pooled.is_empty(), "no launch got a pool VM");
    assert_eq!(cold.path, "cold", "the launch on an empty pool boots a VM");
    Run {
        size,
        filled,
        pooled,
        missed,
        cold,
        refill,
    }
}

/// Press Launch on the confirmation page of REPO and watch `/api/vm`
/// until the VM is ready.
async fn launch_and_wait(student: &Browser, limit: Duration) -> Launch {
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
                    id: view["id"].as_str().unwrap_or("?").to_owned(),
                    took: clicked.elapsed(),
                    path: view["launch_path"].as_str().unwrap_or("?").to_owned(),
                    prebuilt: view["prebuilt"] == true,
                    clicked,
                };
            }
            Some("failed" | "deleted") => panic!("the launch failed: {view:#}"),
            _ => {}
        }
        assert!(
            clicked.elapsed() < limit,
            "not ready in {limit:?}: {view:#}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `/metrics` says `size` pool VMs are ready to be claimed.
async fn wait_for_pool(app: &WebApp, size: u32, limit: Duration) -> Instant {
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
            since.elapsed() < limit,
            "the pool did not fill in {limit:?}: stackbinder_pool_ready is {ready:?} \
             (none: this build has no warm pool)"
        );
        tokio::time::sleep(POLL).await;
    }
}
