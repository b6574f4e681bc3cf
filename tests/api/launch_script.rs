//! The real launch script, as rendered into a VM's user data, run in a
//! sandbox: stub `sudo` and `jupyter-repo2docker` first on PATH record how
//! they were called, `python3` and `curl` are the real ones, and a local
//! HTTP server stands in for stackbinder's callback and records every
//! report. The script runs as the current user instead of root, with its
//! paths pointed into a temporary directory (the STACKBINDER_* knobs).
//!
//! The launch data is written as raw JSON, so the hostile cases reach the
//! script even though stackbinder's own types would refuse them earlier:
//! stackbinder's own fields as the boot data, the rest as the assignment a
//! second local server answers at once (as for a VM booted for its owner).
//! The agent's long-poll itself is tested in `launch_agent.rs`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use stackbinder::cloud_init::{BootData, LAUNCH_SCRIPT_PATH, LaunchData, render_boot_data};
use stackbinder::domain::VmId;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

pub(crate) const TOKEN: &str = "jupyter-token-6f1e0c2b9a";
/// The owner: Jupyter serves under `/user/<login>/`.
pub(crate) const LOGIN: &str = "Grace-Hopper";
pub(crate) const SECRET: &str = "callback-secret-3d7a91f4c8";
pub(crate) const REPO: &str = "https://github.com/binder-examples/requirements";

/// Stand-in for sudo: records its arguments, then runs what follows `--`
/// as the current user (the test cannot switch users).
const SUDO_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >"$SANDBOX/sudo-argv"
while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
shift
exec "$@"
"#;

/// Stand-in for repo2docker: records how it was called, prints `--json-logs`
/// lines like the real one, and then, like the container it would start,
/// serves Jupyter's `/api` under its base URL on the published port. `$SANDBOX/mode` says
/// which way it goes.
const R2D_STUB: &str = r#"#!/usr/bin/env python3
import http.server, json, os, sys, threading, time
sandbox = os.environ["SANDBOX"]
mode = open(os.path.join(sandbox, "mode")).read().strip()
token = os.environ.get("JUPYTER_TOKEN")
if "--no-run" in sys.argv:
    # A prebuild: the image exists under its name from now on.
    with open(os.path.join(sandbox, "prebuild-calls"), "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\n")
    name = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--image-name="))
    with open(os.path.join(sandbox, "images"), "a") as f:
        f.write(name + "\n")
    sys.exit(0)
with open(os.path.join(sandbox, "r2d-call.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "token": token, "cwd": os.getcwd(),
               "session_leader": os.getsid(0) == os.getpid()}, f)
def log(phase, message):
    print(json.dumps({"message": message, "phase": phase}), flush=True)
log("fetching", "Picked Git content provider.\n")
log("fetching", "Cloning into '/tmp/repo2docker-x'...\n")
time.sleep(0.3)
if mode == "clone-fails":
    log("failed", "Failed to clone repository from the URL.\n")
    sys.exit(1)
log("building", "Step 1/52 : FROM docker.io/library/buildpack-deps:jammy\n")
if mode == "chatty":
    for i in range(450):
        log("building", f"build line {i}\n")
print("not JSON: a line repo2docker did not format", flush=True)
log("building", f"a careless step prints the token {token} in \x1b[31mcolour\x1b[0m\n")
time.sleep(0.3)
if mode == "build-fails":
    log("failed", "Error during build: pip install failed\n")
    sys.exit(1)
log("running", "Jupyter Server 2.14.0 is running at http://127.0.0.1:8888/lab?token=...\n")
time.sleep(0.3)
port = next(a.rsplit(":", 2)[1] for a in sys.argv if a.startswith("--publish="))
class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        base = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--ServerApp.base_url="))
        self.send_response(200 if self.path == base + "api" else 404)
        self.end_headers()
        self.wfile.write(b'{"version": "stub"}')
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(port)), Api)
with open(os.path.join(sandbox, "jupyter.pid"), "w") as f:
    f.write(str(os.getpid()))
def stop_with_the_sandbox():
    # The stub ends when its test's sandbox is removed (or after 20 s): the
    # test never signals it by pid, a pid that may name another process
    # by then.
    deadline = time.time() + 20
    while os.path.isdir(sandbox) and time.time() < deadline:
        time.sleep(0.1)
    server.shutdown()
threading.Thread(target=stop_with_the_sandbox, daemon=True).start()
server.serve_forever()
"#;

/// Stand-ins for the disk tools: each records its arguments. A "disk" is a
/// file; it holds a filesystem when its first line is `ext4-filesystem`,
/// which the mkfs stub writes (erasing what was there, as mkfs would).
const BLKID_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >>"$SANDBOX/blkid-argv"
disk=${!#}
[ "$(head -n 1 "$disk")" = ext4-filesystem ] && exit 0
exit 2
"#;
const MKFS_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >"$SANDBOX/mkfs-argv"
echo ext4-filesystem >"${!#}"
"#;
const MOUNT_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >"$SANDBOX/mount-argv"
"#;
const CHOWN_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >"$SANDBOX/chown-argv"
"#;

/// Stand-ins for git and docker: `git ls-remote` names the commit in
/// `$SANDBOX/commit` (nothing without one), `docker image inspect` finds
/// the images named in `$SANDBOX/images`.
const GIT_STUB: &str = r#"#!/bin/bash
printf '%s\n' "$@" >>"$SANDBOX/git-argv"
[ ! -f "$SANDBOX/commit" ] || printf '%s\tHEAD\n' "$(cat "$SANDBOX/commit")"
"#;
const DOCKER_STUB: &str = r#"#!/bin/bash
[ "$1 $2" = "image inspect" ] && grep -qxF -- "$3" "$SANDBOX/images" 2>/dev/null
"#;

/// The home volume of the disk tests; Nova's serial is its first 20 characters.
const HOME_VOLUME: &str = "3f6c2a1e-8b4d-4c7e-9a2f-1d0e5b6c7a8d";

/// The script exactly as a VM receives it: out of the rendered user data.
pub(crate) fn rendered_script(data: &BootData) -> String {
    let user_data = render_boot_data(data);
    let config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&user_data).expect("the user data is YAML");
    config["write_files"]
        .as_sequence()
        .expect("write_files")
        .iter()
        .find(|f| f["path"].as_str() == Some(LAUNCH_SCRIPT_PATH))
        .and_then(|f| f["content"].as_str())
        .expect("the user data carries the launch script")
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One request the callback server received.
#[derive(Debug, Clone)]
struct Received {
    authorization: Option<String>,
    body: Value,
    answered: u16,
}

/// How the fake stackbinder answers its `n`th request (0-based).
type Answer = Arc<dyn Fn(usize) -> u16 + Send + Sync>;

#[derive(Clone)]
struct Callback {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Answer,
}

impl Callback {
    /// Everything received, including the requests it refused.
    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The reports it accepted, in order.
    fn reports(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|r| r.answered == 200)
            .map(|r| r.body)
            .collect()
    }

    fn phases(&self) -> Vec<String> {
        self.reports()
            .iter()
            .filter_map(|r| r["phase"].as_str().map(str::to_owned))
            .collect()
    }

    fn log(&self) -> Vec<String> {
        self.reports()
            .iter()
            .flat_map(|r| r["log"].as_array().cloned().unwrap_or_default())
            .map(|l| l.as_str().expect("log lines are strings").to_owned())
            .collect()
    }
}

async fn record(
    State(cb): State<Callback>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut received = cb.received.lock().unwrap();
    let answered = (cb.answer)(received.len());
    received.push(Received {
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: serde_json::from_slice(&body).expect("a report is JSON"),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

/// A listener that hangs up on every connection until `until`, like a
/// stackbinder that is restarting.
pub(crate) struct HangsUpAtFirst {
    pub(crate) inner: tokio::net::TcpListener,
    pub(crate) until: tokio::time::Instant,
}

impl axum::serve::Listener for HangsUpAtFirst {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if tokio::time::Instant::now() >= self.until {
                return (stream, addr);
            }
            drop(stream);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Start the fake stackbinder on a free loopback port; it hangs up on
/// everyone for `down_for`, then answers the `n`th report with `answer(n)`.
async fn serve_callback(down_for: Duration, answer: Answer) -> (Callback, SocketAddr) {
    let cb = Callback {
        received: Arc::default(),
        answer,
    };
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = inner.local_addr().unwrap();
    let listener = HangsUpAtFirst {
        inner,
        until: tokio::time::Instant::now() + down_for,
    };
    let app = Router::new()
        .route("/api/vm/callback", post(record))
        .with_state(cb.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (cb, bound)
}

/// The fields of the launch data that are the boot data's.
const BOOT_KEYS: [&str; 5] = [
    "vm_id",
    "callback_url",
    "callback_secret",
    "jupyter_port",
    "prebuild",
];

/// A fake stackbinder that gives every VM `job` at once; its assignment URL.
async fn serve_assignment(job: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/api/vm/assignment",
        get(move || async move { axum::Json(job) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{bound}/api/vm/assignment")
}

async fn ok_callback() -> (Callback, SocketAddr) {
    serve_callback(Duration::ZERO, Arc::new(|_| 200)).await
}

pub(crate) struct Sandbox {
    dir: TempDir,
    pub(crate) jupyter_port: u16,
    pub(crate) vm: VmId,
}

pub(crate) struct Run {
    pub(crate) output: Output,
    pub(crate) console: String,
}

impl Sandbox {
    pub(crate) fn new(mode: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, text) in [
            ("sudo", SUDO_STUB),
            ("jupyter-repo2docker", R2D_STUB),
            ("blkid", BLKID_STUB),
            ("mkfs.ext4", MKFS_STUB),
            ("mount", MOUNT_STUB),
            ("chown", CHOWN_STUB),
            ("git", GIT_STUB),
            ("docker", DOCKER_STUB),
        ] {
            let path = bin.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("mode"), mode).unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        Self {
            dir,
            jupyter_port: free_port(),
            vm: VmId::new(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn r2d_path(&self) -> String {
        self.path("bin/jupyter-repo2docker").display().to_string()
    }

    fn launch_data(&self, repo: &str, git_ref: &str) -> LaunchData {
        LaunchData {
            vm_id: self.vm,
            login: LOGIN.into(),
            repo: repo.into(),
            git_ref: git_ref.into(),
            url_path: "lab/tree/index.ipynb".into(),
            jupyter_port: self.jupyter_port,
            jupyter_token: TOKEN.into(),
            callback_url: url::Url::parse("http://127.0.0.1:1/api/vm/callback").unwrap(),
            callback_secret: SECRET.into(),
            gpu: false,
            home_volume_id: None,
        }
    }

    /// Run the script on this launch data (as JSON, which may be anything),
    /// against the callback server at `callback_addr`.
    async fn run_raw(&self, mut data: Value, callback_addr: SocketAddr) -> Run {
        data["callback_url"] = json!(format!("http://{callback_addr}/api/vm/callback"));
        let mut boot = json!({});
        for key in BOOT_KEYS {
            if let Some(value) = data.as_object_mut().unwrap().remove(key) {
                boot[key] = value;
            }
        }
        boot["assignment_url"] = json!(serve_assignment(data).await);
        self.run_boot(boot, &[]).await
    }

    /// Run the script on this boot data (as JSON, which may be anything),
    /// with `env` on top of the sandbox's knobs.
    pub(crate) async fn run_boot(&self, boot: Value, env: &[(&str, &str)]) -> Run {
        let typed = BootData {
            vm_id: self.vm,
            callback_url: url::Url::parse("http://127.0.0.1/").unwrap(),
            assignment_url: url::Url::parse("http://127.0.0.1/").unwrap(),
            callback_secret: SECRET.into(),
            jupyter_port: self.jupyter_port,
            prebuild: Vec::new(),
        };
        let script = self.path("stackbinder-launch");
        std::fs::write(&script, rendered_script(&typed)).unwrap();
        let conf = self.path("boot.json");
        std::fs::write(&conf, boot.to_string()).unwrap();
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let run = tokio::process::Command::new("bash")
            .arg(&script)
            .arg(&conf)
            .env("PATH", path)
            .env("SANDBOX", self.dir.path())
            .env("STACKBINDER_R2D", self.r2d_path())
            .env("STACKBINDER_WORKDIR", self.path("work"))
            .env("STACKBINDER_CONFIG_DIR", self.path("etc"))
            .env("STACKBINDER_TICK_SECONDS", "0.1")
            .env("STACKBINDER_RETRY_SECONDS", "0.2")
            .env("STACKBINDER_RETRIES", "25")
            .env("STACKBINDER_DEADLINE_SECONDS", "30")
            .env("STACKBINDER_DISK_DIR", self.path("disks"))
            .env("STACKBINDER_HOME_MOUNT", self.path("home"))
            .env("STACKBINDER_DISK_WAIT_SECONDS", "2")
            .env(
                "STACKBINDER_IMAGE_NAMER",
                concat!(env!("CARGO_MANIFEST_DIR"), "/cloud-init/image_name.py"),
            )
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the launch script ends within a minute")
            .expect("bash runs");
        let console = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Run { output, console }
    }

    async fn run(&self, addr: SocketAddr, repo: &str, git_ref: &str) -> Run {
        let data = serde_json::to_value(self.launch_data(repo, git_ref)).unwrap();
        self.run_raw(data, addr).await
    }

    /// How the stub repo2docker was called, if it was.
    pub(crate) fn r2d_call(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path("r2d-call.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    pub(crate) fn r2d_argv(&self) -> Vec<String> {
        let call = self.r2d_call().expect("repo2docker was called");
        crate::helpers::strings(&call["argv"])
    }
}

impl Sandbox {
    /// The home volume's disk as the VM shows it, holding `content`.
    fn home_disk(&self, content: &str) -> PathBuf {
        let disks = self.path("disks");
        std::fs::create_dir_all(&disks).unwrap();
        let disk = disks.join(format!("virtio-{}", &HOME_VOLUME[..20]));
        std::fs::write(&disk, content).unwrap();
        disk
    }

    async fn run_with_home(&self, addr: SocketAddr) -> Run {
        let mut data = serde_json::to_value(self.launch_data(REPO, "HEAD")).unwrap();
        data["home_volume_id"] = json!(HOME_VOLUME);
        self.run_raw(data, addr).await
    }

    /// The arguments a stub tool was called with, if it was.
    fn tool_argv(&self, tool: &str) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.path(&format!("{tool}-argv"))).ok()?;
        Some(text.lines().map(str::to_owned).collect())
    }
}

// The stub Jupyter outlives the script, as the real one does; it stops by
// itself once the sandbox's directory is gone (see `R2D_STUB`).

/// Sandboxes used to end with `kill $(cat jupyter.pid)`. The stub often
/// ended before (the script stops it on 409 and on failure, or its timer
/// ran out), and on a busy machine its pid soon names another process
/// (pid_max is 32768 here; threads take pids too): `cargo test` once sent
/// SIGTERM to the demo that `secrets_in_logs` was driving, which shut down
/// mid-test (`IncompleteMessage` on `GET /api/vm`). Dropping a sandbox
/// must signal nothing.
#[test]
fn a_finished_sandbox_signals_no_process_named_by_its_stale_pid_file() {
    // Arrange: a bystander that blocks SIGTERM, so a signal sent to it stays
    // pending where /proc shows it; its pid in the sandbox's pid file, as if
    // the stub's old pid had been given to it.
    let mut bystander = std::process::Command::new("python3")
        .args([
            "-c",
            "import signal, sys, time\n\
             signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n\
             print('ready', flush=True)\n\
             time.sleep(60)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(bystander.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let sandbox = Sandbox::new("ok");
    std::fs::write(sandbox.path("jupyter.pid"), bystander.id().to_string()).unwrap();

    // Act
    drop(sandbox);

    // Assert: no SIGTERM (signal 15, bit 14) is pending for the bystander.
    let status = std::fs::read_to_string(format!("/proc/{}/status", bystander.id())).unwrap();
    let _ = bystander.kill();
    let _ = bystander.wait();
    let pending = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .expect("/proc shows the pending signals");
    assert_eq!(
        pending & (1 << 14),
        0,
        "dropping a sandbox sent SIGTERM to an unrelated process"
    );
}

pub(crate) fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "the Jupyter token shows in {what}");
    assert!(
        !text.contains(SECRET),
        "the callback secret shows in {what}"
    );
}

/// The command line the script gives repo2docker for `repo` at `git_ref`.
fn expected_r2d_argv(sandbox: &Sandbox, repo: &str, git_ref: &str) -> Vec<String> {
    [
        "--config=/etc/stackbinder/repo2docker_config.py",
        "--json-logs",
        &format!("--ref={git_ref}"),
        "--user-id=1000",
        "--user-name=jovyan",
        "--env=JUPYTER_TOKEN",
        &format!("--publish=0.0.0.0:{}:8888", sandbox.jupyter_port),
        "--",
        repo,
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        "--port=8888",
        "--no-browser",
        &format!("--ServerApp.base_url=/user/{LOGIN}/"),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test]
async fn a_launch_reports_every_phase_and_the_port_and_keeps_the_secrets_to_itself() {
    // Arrange
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = ok_callback().await;

    // Act
    let run = sandbox.run(addr, REPO, "v1.0").await;

    // Assert: it ran repo2docker as `ubuntu`, with the token only in its
    // environment, from a directory where no user file can configure it.
    assert!(run.output.status.success(), "{}", run.console);
    let sudo = std::fs::read_to_string(sandbox.path("sudo-argv")).unwrap();
    assert!(
        sudo.starts_with("-u\nubuntu\n-H\n--preserve-env=JUPYTER_TOKEN\n--\n"),
        "{sudo}"
    );
    assert_no_secret("sudo's arguments", &sudo);
    let call = sandbox.r2d_call().unwrap();
    assert_eq!(
        sandbox.r2d_argv(),
        expected_r2d_argv(&sandbox, REPO, "v1.0")
    );
    assert_eq!(call["token"], TOKEN, "repo2docker gets the token");
    assert_eq!(call["cwd"], "/");
    assert_eq!(
        call["session_leader"], true,
        "repo2docker outlives cloud-init"
    );

    // What it reported: every phase in order, the port with `ready`, the
    // secret on every request, sequence numbers that only grow.
    assert_eq!(cb.phases(), ["cloning", "building", "starting", "ready"]);
    let reports = cb.reports();
    let last = reports.last().unwrap();
    assert_eq!(last["port"], sandbox.jupyter_port);
    assert_eq!(last["vm"], sandbox.vm.to_string());
    let seqs: Vec<i64> = reports.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for r in cb.all() {
        assert_eq!(
            r.authorization.as_deref(),
            Some(&*format!("Bearer {SECRET}"))
        );
    }

    // The log: relayed from repo2docker, JSON or not, cleaned of secrets
    // and terminal escapes; the console shows neither secret.
    let log = cb.log();
    let text = log.join("\n");
    assert!(log.contains(&format!("launching {REPO} at v1.0")), "{text}");
    assert!(text.contains("Step 1/52 : FROM"), "{text}");
    assert!(text.contains("not JSON: a line repo2docker did not format"));
    assert!(text.contains("prints the token [redacted] in"), "{text}");
    assert!(!text.contains('\x1b'), "terminal escapes are cut");
    assert!(text.contains("Jupyter answers on port"));
    assert_no_secret("the relayed log", &text);
    assert_no_secret("the console", &run.console);
    let header = sandbox.path("work/callback-header");
    let mode = std::fs::metadata(header).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the secret's file is for its owner only");
}

/// A launch profile with `gpu = true`: repo2docker reads a configuration
/// that asks Docker for every GPU (`--gpus all`) on top of the image's.
#[tokio::test]
async fn a_gpu_launch_runs_the_container_with_every_gpu() {
    // Arrange
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = ok_callback().await;
    let mut data = serde_json::to_value(sandbox.launch_data(REPO, "HEAD")).unwrap();
    data["gpu"] = json!(true);

    // Act
    let run = sandbox.run_raw(data, addr).await;

    // Assert: the same command line but for the configuration, which is
    // readable by `ubuntu` and adds the GPU request to the image's.
    assert!(run.output.status.success(), "{}", run.console);
    assert_eq!(cb.phases(), ["cloning", "building", "starting", "ready"]);
    let config = sandbox.path("etc/repo2docker_gpus.py");
    let mut expected = expected_r2d_argv(&sandbox, REPO, "HEAD");
    expected[0] = format!("--config={}", config.display());
    assert_eq!(sandbox.r2d_argv(), expected);
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("load_subconfig(\"/etc/stackbinder/repo2docker_config.py\")"),
        "{text}"
    );

    // The real repo2docker (when there is one) reads it as `--gpus all`:
    // a request for every GPU (count -1) with the `gpu` capability.
    let Some(python) = std::env::var_os("TEST_REPO2DOCKER_PYTHON") else {
        eprintln!("skipped the real repo2docker: TEST_REPO2DOCKER_PYTHON is not set");
        return;
    };
    let out = tokio::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\n\
             from repo2docker.__main__ import make_r2d\n\
             print(json.dumps(make_r2d(sys.argv[1:]).extra_run_kwargs))",
        ])
        .args(sandbox.r2d_argv())
        .output()
        .await
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let understood: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let request = &understood["device_requests"][0];
    assert_eq!(request["Count"], -1, "{understood}");
    assert_eq!(request["Capabilities"], json!([["gpu"]]), "{understood}");
}

#[tokio::test]
async fn a_failed_build_is_reported_with_its_last_log_lines() {
    let sandbox = Sandbox::new("build-fails");
    let (cb, addr) = ok_callback().await;

    let run = sandbox.run(addr, REPO, "HEAD").await;

    assert_eq!(run.output.status.code(), Some(1), "{}", run.console);
    assert_eq!(cb.phases(), ["cloning", "building", "failed"]);
    let log = cb.log();
    assert!(
        log.contains(&"Error during build: pip install failed".to_owned()),
        "{log:?}"
    );
    // The failed report ends with the reason and the last line before it,
    // which is what stackbinder shows the user.
    let last = cb.reports().last().unwrap().clone();
    let note = crate::helpers::strings(&last["log"]).pop().unwrap();
    assert!(
        note.contains("repo2docker stopped (exit status 1)")
            && note.contains("Error during build: pip install failed"),
        "{note}"
    );
    assert!(run.console.contains("failed: repo2docker stopped"));
    assert_no_secret("the console", &run.console);
}

#[tokio::test]
async fn hostile_repository_urls_and_refs_reach_repo2docker_as_plain_arguments() {
    let (cb, addr) = ok_callback().await;
    let long = format!("https://example.org/{}", "a".repeat(2000));
    let cases: Vec<(String, String)> = vec![
        (
            "https://example.org/a'; touch PWNED; echo '".into(),
            "main\"; touch PWNED; \"".into(),
        ),
        (
            "https://example.org/$(touch PWNED)/`touch PWNED`".into(),
            "$(touch PWNED)`touch PWNED`".into(),
        ),
        (
            "https://example.org/x;touch PWNED|touch PWNED&&touch PWNED".into(),
            "v1 --upload-pack=touch PWNED".into(),
        ),
        (long.clone(), "b".repeat(1000)),
    ];
    for (repo, git_ref) in cases {
        let sandbox = Sandbox::new("ok");
        let pwned = sandbox.path("pwned");
        let pwned = pwned.display().to_string();
        let repo = repo.replace("PWNED", &pwned);
        let git_ref = git_ref.replace("PWNED", &pwned);

        let run = sandbox.run(addr, &repo, &git_ref).await;

        assert!(run.output.status.success(), "{repo:?}: {}", run.console);
        assert_eq!(
            sandbox.r2d_argv(),
            expected_r2d_argv(&sandbox, &repo, &git_ref),
            "the values arrive unchanged, one argument each"
        );
        assert!(!Path::new(&pwned).exists(), "{repo:?} ran a command");
        let announced: String = format!("launching {repo} at {git_ref}")
            .chars()
            .take(500)
            .collect();
        assert!(cb.log().contains(&announced), "the log shows it as text");
    }
}

#[tokio::test]
async fn newlines_control_characters_and_option_look_alikes_are_refused_on_the_vm() {
    let (cb, addr) = ok_callback().await;
    let cases = [
        ("--help-all", "HEAD", "starts with '-'"),
        (REPO, "--upload-pack=touch /tmp/x", "starts with '-'"),
        ("-c", "HEAD", "starts with '-'"),
        (REPO, "main\nruncmd: [reboot]", "control characters"),
        ("https://example.org/a\rb", "HEAD", "control characters"),
        (REPO, "", "is missing"),
    ];
    for (repo, git_ref, why) in cases {
        let sandbox = Sandbox::new("ok");
        let before = cb.reports().len();

        let run = sandbox.run(addr, repo, git_ref).await;

        assert_eq!(run.output.status.code(), Some(1), "{repo:?} {git_ref:?}");
        assert!(sandbox.r2d_call().is_none(), "repo2docker must not run");
        let reports = cb.reports()[before..].to_vec();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0]["phase"], "failed");
        let log = crate::helpers::strings(&reports[0]["log"]).join("\n");
        assert!(log.contains(why), "{repo:?} {git_ref:?}: {log}");
    }
}

#[tokio::test]
async fn launch_data_that_would_forge_a_header_stops_the_script_before_anything_runs() {
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = ok_callback().await;
    let mut data = serde_json::to_value(sandbox.launch_data(REPO, "HEAD")).unwrap();
    data["callback_secret"] = json!("s3cret\r\nX-Forged: yes");

    let run = sandbox.run_raw(data, addr).await;

    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.console.contains("cannot read the boot data"));
    assert!(cb.all().is_empty(), "nothing was sent");
    assert!(sandbox.r2d_call().is_none());
}

#[tokio::test]
async fn a_login_that_is_not_a_github_login_stops_the_script_before_anything_runs() {
    // The login becomes Jupyter's base URL and part of a URL the script
    // asks for: only what GitHub allows may pass.
    for login in [
        "../admin",
        "grace/x",
        "-grace",
        "grace\n",
        "",
        "a b",
        &"a".repeat(40),
    ] {
        let sandbox = Sandbox::new("ok");
        let (cb, addr) = ok_callback().await;
        let mut data = serde_json::to_value(sandbox.launch_data(REPO, "HEAD")).unwrap();
        data["login"] = json!(login);

        let run = sandbox.run_raw(data, addr).await;

        assert_eq!(run.output.status.code(), Some(1), "{login:?}");
        assert!(
            run.console.contains("`login`"),
            "{login:?}: {}",
            run.console
        );
        assert!(cb.all().is_empty(), "{login:?}: nothing was sent");
        assert!(sandbox.r2d_call().is_none(), "{login:?}");
    }
}

#[tokio::test]
async fn reports_are_retried_while_stackbinder_is_down_or_busy() {
    // stackbinder hangs up at first (restarting), then answers 503 and
    // 429 a few times before it takes the reports.
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = serve_callback(
        Duration::from_millis(800),
        Arc::new(|n| match n {
            0 | 1 => 503,
            3 => 429,
            _ => 200,
        }),
    )
    .await;

    let run = sandbox.run(addr, REPO, "HEAD").await;

    assert!(run.output.status.success(), "{}", run.console);
    assert_eq!(cb.phases(), ["cloning", "building", "starting", "ready"]);
    let refused = cb.all().iter().filter(|r| r.answered != 200).count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn a_vm_that_is_being_deleted_stops_reporting() {
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = serve_callback(Duration::ZERO, Arc::new(|_| 409)).await;

    let run = sandbox.run(addr, REPO, "HEAD").await;

    assert!(run.output.status.success(), "{}", run.console);
    assert!(run.console.contains("HTTP 409"), "{}", run.console);
    assert_eq!(cb.all().len(), 1, "one refused report, no retries");
    assert!(sandbox.r2d_call().is_none(), "nothing was started");
}

#[tokio::test]
async fn a_long_log_goes_in_batches_of_at_most_200_lines_each_line_once() {
    let sandbox = Sandbox::new("chatty");
    let (cb, addr) = ok_callback().await;

    let run = sandbox.run(addr, REPO, "HEAD").await;

    assert!(run.output.status.success(), "{}", run.console);
    for report in cb.reports() {
        assert!(report["log"].as_array().unwrap().len() <= 200);
    }
    let build_lines: Vec<String> = cb
        .log()
        .into_iter()
        .filter(|l| l.starts_with("build line "))
        .collect();
    let expected: Vec<String> = (0..450).map(|i| format!("build line {i}")).collect();
    assert_eq!(build_lines, expected);
    assert_eq!(cb.phases(), ["cloning", "building", "starting", "ready"]);
}

/// The flags the script gives the stub are fed to the real repo2docker
/// (from PyPI): its CLI code must accept them, and its git provider must
/// clone a local repository at the requested ref. CI installs it and sets
/// TEST_REPO2DOCKER_PYTHON; elsewhere the test is skipped, except
/// that under CI=true a missing repo2docker is a failure.
#[tokio::test]
async fn the_real_repo2docker_accepts_the_flags_the_script_passes() {
    let Some(python) = std::env::var_os("TEST_REPO2DOCKER_PYTHON") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must set TEST_REPO2DOCKER_PYTHON to a python with jupyter-repo2docker"
        );
        eprintln!("skipped: TEST_REPO2DOCKER_PYTHON is not set");
        return;
    };
    // A small local repository with the commit we ask for on a branch.
    let sandbox = Sandbox::new("ok");
    let repo_dir = sandbox.path("repo");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(&repo_dir)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    std::fs::create_dir(&repo_dir).unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "main"]);
    git(&["checkout", "-q", "-b", "feature"]);
    git(&["commit", "-q", "--allow-empty", "-m", "feature"]);
    let wanted = git(&["rev-parse", "feature"]);
    git(&["checkout", "-q", "main"]);
    let repo_url = format!("file://{}", repo_dir.display());
    let (_cb, addr) = ok_callback().await;
    // With a home volume, so that its --volume is checked too.
    sandbox.home_disk("");
    let mut data = serde_json::to_value(sandbox.launch_data(&repo_url, "feature")).unwrap();
    data["home_volume_id"] = json!(HOME_VOLUME);
    let run = sandbox.run_raw(data, addr).await;
    assert!(run.output.status.success(), "{}", run.console);
    let argv = sandbox.r2d_argv();

    let checkout = sandbox.path("checkout");
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/repo2docker_check.py");
    let out = tokio::process::Command::new(python)
        .arg(check)
        .arg(&checkout)
        .args(&argv)
        .env("JUPYTER_TOKEN", TOKEN)
        .current_dir(sandbox.path("work"))
        .output()
        .await
        .expect("python runs");
    assert!(
        out.status.success(),
        "repo2docker refused {argv:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let understood: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(understood["repo"], repo_url.as_str());
    assert_eq!(understood["ref"], "feature");
    assert_eq!(understood["json_logs"], true);
    assert_eq!(understood["run"], true);
    assert_eq!(
        understood["ports"],
        json!({ "8888/tcp": ["0.0.0.0", sandbox.jupyter_port.to_string()] })
    );
    assert_eq!(
        understood["environment"],
        json!([format!("JUPYTER_TOKEN={TOKEN}")])
    );
    assert_eq!(
        understood["run_cmd"],
        json!([
            "jupyter",
            "lab",
            "--ip=0.0.0.0",
            "--port=8888",
            "--no-browser",
            format!("--ServerApp.base_url=/user/{LOGIN}/")
        ])
    );
    assert_eq!(understood["user_id"], 1000);
    assert_eq!(understood["user_name"], "jovyan");
    assert_eq!(
        understood["volumes"],
        json!({ sandbox.path("home").display().to_string(): "/home/jovyan/work" }),
        "the home volume's mount becomes /home/jovyan/work"
    );
    assert_eq!(
        understood["head"],
        wanted.as_str(),
        "the ref is checked out"
    );
}

/// What a launch with a home volume gives the disk tools and repo2docker.
fn assert_home_mounted(sandbox: &Sandbox, disk: &Path) {
    let mount = sandbox.path("home").display().to_string();
    let disk = disk.display().to_string();
    assert_eq!(
        sandbox.tool_argv("mount").expect("mount was called"),
        ["-o", "nodev,nosuid", disk.as_str(), mount.as_str()]
    );
    assert_eq!(
        sandbox.tool_argv("chown").expect("chown was called"),
        ["1000:1000", mount.as_str()],
        "the mount belongs to the container's user"
    );
    let argv = sandbox.r2d_argv();
    let end = argv.iter().position(|a| a == "--").unwrap();
    assert!(
        argv[..end].contains(&format!("--volume={mount}:/home/jovyan/work")),
        "{argv:?}"
    );
}

#[tokio::test]
async fn a_fresh_home_volume_gets_a_filesystem_and_is_mounted_into_the_container() {
    // Arrange: a new, empty volume.
    let sandbox = Sandbox::new("ok");
    let disk = sandbox.home_disk("");
    let (cb, addr) = ok_callback().await;

    // Act
    let run = sandbox.run_with_home(addr).await;

    // Assert
    assert!(run.output.status.success(), "{}", run.console);
    let disk_path = disk.display().to_string();
    let mkfs = sandbox.tool_argv("mkfs").expect("mkfs was called");
    assert_eq!(mkfs.last(), Some(&disk_path), "{mkfs:?}");
    assert_eq!(
        sandbox.tool_argv("blkid").unwrap(),
        ["-p", disk_path.as_str()]
    );
    assert_home_mounted(&sandbox, &disk);
    let log = cb.log().join("\n");
    assert!(log.contains("preparing your new storage"), "{log}");
    assert!(log.contains("mounted at /home/jovyan/work"), "{log}");
    assert_eq!(cb.phases().last().map(String::as_str), Some("ready"));
}

#[tokio::test]
async fn a_used_home_volume_is_mounted_as_it_is_without_mkfs() {
    // Arrange: a volume an earlier VM formatted and filled.
    let sandbox = Sandbox::new("ok");
    let used = "ext4-filesystem\nnotebooks/analysis.ipynb\n";
    let disk = sandbox.home_disk(used);
    let (cb, addr) = ok_callback().await;

    // Act
    let run = sandbox.run_with_home(addr).await;

    // Assert: no mkfs, the data as it was.
    assert!(run.output.status.success(), "{}", run.console);
    assert_eq!(sandbox.tool_argv("mkfs"), None, "mkfs on a used volume");
    assert_eq!(std::fs::read_to_string(&disk).unwrap(), used);
    assert_home_mounted(&sandbox, &disk);
    let log = cb.log().join("\n");
    assert!(log.contains("has your work from earlier VMs"), "{log}");
}

/// A GPU profile's launch of a user with a home volume: repo2docker gets
/// both, the GPU configuration and the mounted volume.
#[tokio::test]
async fn a_gpu_launch_with_a_home_volume_gets_both() {
    // Arrange
    let sandbox = Sandbox::new("ok");
    let disk = sandbox.home_disk("");
    let (cb, addr) = ok_callback().await;
    let mut data = serde_json::to_value(sandbox.launch_data(REPO, "HEAD")).unwrap();
    data["gpu"] = json!(true);
    data["home_volume_id"] = json!(HOME_VOLUME);

    // Act
    let run = sandbox.run_raw(data, addr).await;

    // Assert
    assert!(run.output.status.success(), "{}", run.console);
    assert_home_mounted(&sandbox, &disk);
    let config = sandbox.path("etc/repo2docker_gpus.py");
    assert_eq!(
        sandbox.r2d_argv()[0],
        format!("--config={}", config.display())
    );
    assert!(config.exists());
    assert_eq!(cb.phases().last().map(String::as_str), Some("ready"));
}

#[tokio::test]
async fn a_home_volume_that_never_appears_fails_the_launch_and_runs_nothing() {
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = ok_callback().await;

    let run = sandbox.run_with_home(addr).await;

    assert_eq!(run.output.status.code(), Some(1), "{}", run.console);
    assert_eq!(cb.phases(), ["failed"]);
    assert!(cb.log().join("\n").contains("your storage did not appear"));
    assert!(sandbox.tool_argv("mkfs").is_none() && sandbox.r2d_call().is_none());
}

#[tokio::test]
async fn a_home_volume_id_that_is_not_an_id_stops_the_script_before_anything_runs() {
    let sandbox = Sandbox::new("ok");
    let (cb, addr) = ok_callback().await;
    let mut data = serde_json::to_value(sandbox.launch_data(REPO, "HEAD")).unwrap();
    data["home_volume_id"] = json!("../../../dev/sda\"; mkfs /dev/sda");

    let run = sandbox.run_raw(data, addr).await;

    assert_eq!(run.output.status.code(), Some(1), "{}", run.console);
    assert!(cb.all().is_empty(), "nothing reported");
    assert!(sandbox.tool_argv("blkid").is_none() && sandbox.tool_argv("mkfs").is_none());
    assert!(sandbox.r2d_call().is_none());
}
