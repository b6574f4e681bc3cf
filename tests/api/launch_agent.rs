//! The real launch script as the agent of a VM, in the sandbox of
//! `launch_script.rs`: it long-polls a fake stackbinder's
//! `GET /api/vm/assignment` with its boot secret until it has its job, then
//! reports with the secret the job came with; it stops on 409, rides out a
//! stackbinder that is down for a while, and on a pool VM builds the
//! pinned repositories first, so that their launch needs no build.

use crate::launch_script::{
    HangsUpAtFirst, LOGIN, REPO, Run, SECRET, Sandbox, TOKEN, assert_no_secret,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROTATED: &str = "rotated-secret-0c9d8e7f6a";
const COMMIT: &str = "4b1c0e8f2a3d5c6b7a8e9f0d1c2b3a4e5f6d7c8b";

/// How the fake stackbinder answers the `n`th request for the job.
type Answers = Arc<dyn Fn(usize) -> Response + Send + Sync>;

/// A report as received: its Authorization header and its body.
type Report = (Option<String>, Value);

#[derive(Clone, Default)]
struct Seen {
    /// The Authorization header of each request for the job.
    asked: Arc<Mutex<Vec<Option<String>>>>,
    /// The Authorization header and body of each report.
    reports: Arc<Mutex<Vec<Report>>>,
}

#[derive(Clone)]
struct Fake {
    seen: Seen,
    answers: Answers,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn asked(State(fake): State<Fake>, request: Request) -> Response {
    let n = {
        let mut asked = fake.seen.asked.lock().unwrap();
        asked.push(bearer(request.headers()));
        asked.len() - 1
    };
    (fake.answers)(n)
}

async fn reported(State(fake): State<Fake>, headers: HeaderMap, body: String) -> StatusCode {
    let report = serde_json::from_str(&body).unwrap();
    fake.seen
        .reports
        .lock()
        .unwrap()
        .push((bearer(&headers), report));
    StatusCode::OK
}

/// A fake stackbinder that hangs up on everyone for `down_for`.
async fn stackbinder(down_for: Duration, answers: Answers) -> (Seen, SocketAddr) {
    let seen = Seen::default();
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = inner.local_addr().unwrap();
    let listener = HangsUpAtFirst {
        inner,
        until: tokio::time::Instant::now() + down_for,
    };
    let app = Router::new()
        .route("/api/vm/assignment", get(asked))
        .route("/api/vm/callback", post(reported))
        .with_state(Fake {
            seen: seen.clone(),
            answers,
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (seen, bound)
}

fn job(repo: &str, git_ref: &str, rotated: Option<&str>) -> Value {
    json!({
        "login": LOGIN, "repo": repo, "git_ref": git_ref, "url_path": "",
        "jupyter_token": TOKEN, "callback_secret": rotated,
    })
}

fn assigned(job: Value) -> Response {
    axum::Json(job).into_response()
}

fn status(code: u16) -> Response {
    StatusCode::from_u16(code).unwrap().into_response()
}

fn boot(sandbox: &Sandbox, addr: SocketAddr, prebuild: Value) -> Value {
    json!({
        "vm_id": sandbox.vm,
        "callback_url": format!("http://{addr}/api/vm/callback"),
        "assignment_url": format!("http://{addr}/api/vm/assignment"),
        "callback_secret": SECRET,
        "jupyter_port": sandbox.jupyter_port,
        "prebuild": prebuild,
    })
}

async fn run(sandbox: &Sandbox, addr: SocketAddr, prebuild: Value) -> Run {
    let boot = boot(sandbox, addr, prebuild);
    sandbox
        .run_boot(boot, &[("STACKBINDER_ASK_RETRIES", "30")])
        .await
}

fn phases(seen: &Seen) -> Vec<String> {
    let reports = seen.reports.lock().unwrap();
    reports
        .iter()
        .filter_map(|(_, r)| r["phase"].as_str().map(str::to_owned))
        .collect()
}

fn log(seen: &Seen) -> String {
    let reports = seen.reports.lock().unwrap();
    reports
        .iter()
        .flat_map(|(_, r)| r["log"].as_array().cloned().unwrap_or_default())
        .map(|l| l.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_agent_asks_until_it_has_its_job_and_reports_with_the_rotated_secret() {
    // A pool VM: nothing at first (the hold ends twice), then the claim's
    // answer with a new secret.
    let sandbox = Sandbox::new("ok");
    let (seen, addr) = stackbinder(
        Duration::ZERO,
        Arc::new(|n| match n {
            0 | 1 => status(204),
            _ => assigned(job(REPO, "HEAD", Some(ROTATED))),
        }),
    )
    .await;

    let run = run(&sandbox, addr, json!([])).await;

    assert!(run.output.status.success(), "{}", run.console);
    let boot_bearer = Some(format!("Bearer {SECRET}"));
    assert_eq!(*seen.asked.lock().unwrap(), vec![boot_bearer; 3]);
    assert_eq!(phases(&seen), ["cloning", "building", "starting", "ready"]);
    let reports = seen.reports.lock().unwrap().clone();
    for (authorization, _) in &reports {
        assert_eq!(
            authorization.as_deref(),
            Some(&*format!("Bearer {ROTATED}"))
        );
    }
    // The job is kept next to the boot data, for root only.
    let kept = sandbox.path("assignment.json");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(kept).unwrap()).unwrap();
    assert_eq!(kept["repo"], REPO);
    assert_eq!(sandbox.r2d_call().unwrap()["token"], TOKEN);
    assert_no_secret("the console", &run.console);
    assert!(!run.console.contains(ROTATED), "{}", run.console);
    assert!(!log(&seen).contains(ROTATED));
}

#[tokio::test]
async fn a_vm_deleted_while_it_waits_stops_and_runs_nothing() {
    let sandbox = Sandbox::new("ok");
    let (seen, addr) = stackbinder(
        Duration::ZERO,
        Arc::new(|n| if n == 0 { status(204) } else { status(409) }),
    )
    .await;

    let run = run(&sandbox, addr, json!([])).await;

    assert!(run.output.status.success(), "{}", run.console);
    assert!(run.console.contains("HTTP 409"), "{}", run.console);
    assert_eq!(seen.asked.lock().unwrap().len(), 2, "no asking after 409");
    assert!(seen.reports.lock().unwrap().is_empty());
    assert!(sandbox.r2d_call().is_none());
}

#[tokio::test]
async fn the_agent_rides_out_a_stackbinder_that_is_down_for_a_while() {
    // Hangs up at first (restarting), then overloaded and failing, then
    // back: the VM still gets its job and launches.
    let sandbox = Sandbox::new("ok");
    let (seen, addr) = stackbinder(
        Duration::from_millis(800),
        Arc::new(|n| match n {
            0 => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response(),
            1 => status(503),
            _ => assigned(job(REPO, "HEAD", None)),
        }),
    )
    .await;

    let run = run(&sandbox, addr, json!([])).await;

    assert!(run.output.status.success(), "{}", run.console);
    assert_eq!(seen.asked.lock().unwrap().len(), 3);
    assert_eq!(phases(&seen), ["cloning", "building", "starting", "ready"]);
    let reports = seen.reports.lock().unwrap().clone();
    for (authorization, _) in &reports {
        assert_eq!(authorization.as_deref(), Some(&*format!("Bearer {SECRET}")));
    }
}

#[tokio::test]
async fn a_refused_secret_ends_the_agent_without_a_launch() {
    let sandbox = Sandbox::new("ok");
    let (seen, addr) = stackbinder(Duration::ZERO, Arc::new(|_| status(401))).await;

    let run = run(&sandbox, addr, json!([])).await;

    assert_eq!(run.output.status.code(), Some(1), "{}", run.console);
    assert!(run.console.contains("HTTP 401"), "{}", run.console);
    assert_eq!(seen.asked.lock().unwrap().len(), 1, "no retries of a 401");
    assert!(sandbox.r2d_call().is_none());
}

/// The image name `cloud-init/image_name.py` derives, through its CLI.
fn image_name(repo: &str, commit: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/cloud-init/image_name.py"
        ))
        .args([repo, commit])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn image_names_are_the_ones_binderhub_derives() {
    // Computed with BinderHub's _safe_build_slug and escapism 1.1.
    let commit = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(
        image_name("https://github.com/binder-examples/requirements", commit),
        format!("binder-2dexamples-2drequirements-55ab5c:{commit}")
    );
    assert_eq!(
        image_name("https://gitlab.com/a_b/c.d", commit),
        format!("https-3a-2f-2fgitlab-2ecom-2fa-5fb-2fc-2ed-5ab64f:{commit}")
    );
    // A GitHub repository is named by owner and name, with or without .git.
    assert_eq!(
        image_name(
            "https://github.com/binder-examples/requirements.git",
            commit
        ),
        image_name("https://github.com/binder-examples/requirements", commit)
    );
    let long = image_name(&format!("https://example.org/{}", "x".repeat(400)), commit);
    assert_eq!(long.split(':').next().unwrap().len(), 255, "{long}");
}

#[tokio::test]
async fn a_pool_vm_prebuilds_its_pinned_repositories_and_their_launch_needs_no_build() {
    let sandbox = Sandbox::new("ok");
    std::fs::write(sandbox.path("commit"), COMMIT).unwrap();
    let (seen, addr) = stackbinder(
        Duration::ZERO,
        Arc::new(|_| assigned(job(REPO, "main", Some(ROTATED)))),
    )
    .await;

    let run = run(&sandbox, addr, json!([{ "repo": REPO, "git_ref": "main" }])).await;

    // The prebuild: repo2docker --no-run under BinderHub's name for the
    // resolved commit, before the VM asked for its job.
    assert!(run.output.status.success(), "{}", run.console);
    let name = image_name(REPO, COMMIT);
    let prebuilt = std::fs::read_to_string(sandbox.path("prebuild-calls")).unwrap();
    let argv: Vec<String> = serde_json::from_str(prebuilt.lines().next().unwrap()).unwrap();
    for wanted in [
        "--no-run".to_owned(),
        format!("--image-name={name}"),
        format!("--ref={COMMIT}"),
    ] {
        assert!(argv.contains(&wanted), "{wanted} in {argv:?}");
    }
    assert_eq!(argv.last().map(String::as_str), Some(REPO));
    let console = &run.console;
    let prebuilt_at = console.find(&format!("prebuilt {name}")).expect(console);
    let asked_at = console
        .find("asking stackbinder for its job")
        .expect(console);
    assert!(prebuilt_at < asked_at, "{console}");
    // The launch of the pinned repository names the image: no build.
    assert!(
        sandbox.r2d_argv().contains(&format!("--image-name={name}")),
        "{:?}",
        sandbox.r2d_argv()
    );
    assert!(log(&seen).contains("environment prebuilt: starting without a build"));
}

#[tokio::test]
async fn a_launch_of_a_repository_the_vm_did_not_prebuild_builds_as_before() {
    let sandbox = Sandbox::new("ok");
    std::fs::write(sandbox.path("commit"), COMMIT).unwrap();
    let (seen, addr) = stackbinder(
        Duration::ZERO,
        Arc::new(|_| assigned(job(REPO, "main", None))),
    )
    .await;

    let run = run(&sandbox, addr, json!([])).await;

    assert!(run.output.status.success(), "{}", run.console);
    assert!(
        !sandbox
            .r2d_argv()
            .iter()
            .any(|a| a.starts_with("--image-name")),
        "{:?}",
        sandbox.r2d_argv()
    );
    assert!(!log(&seen).contains("environment prebuilt"));
}
