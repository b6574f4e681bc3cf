//! A real JupyterLab for a simulated VM (`simulator.jupyter_command`), run
//! the way `cloud-init/launch.sh` runs it in the container: under
//! `--ServerApp.base_url=/user/<login>/`, on the VM's address and port,
//! with `JUPYTER_TOKEN` from the launch data in its environment only. It
//! lives in a temporary directory of its own (notebooks, configuration,
//! runtime files) and is stopped with SIGTERM, which makes Jupyter shut its
//! kernels down too, when the VM is deleted.

use crate::cloud_init::LaunchData;
use crate::provision::jupyter::base_path;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// How long a JupyterLab may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings a VM's Jupyter does not need: a demo never reaches beyond this
/// machine (JupyterLab neither looks for updates nor fetches news), and
/// whoever runs the demo may be root (CI is), while the container runs
/// Jupyter as `jovyan`.
const SIMULATOR_CONFIG: &str = r#"{
  "ServerApp": {
    "allow_root": true
  },
  "LabApp": {
    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
    "news_url": null
  }
}
"#;

/// A running JupyterLab; dropping it stops it.
pub struct RealJupyter {
    child: Option<Child>,
    dir: Option<TempDir>,
}

/// Start `command` (e.g. `python -m jupyterlab`) for the VM of `data` on
/// `at`, and wait until it answers `/user/<login>/api`. Its output goes to
/// the VM's console, without the token.
pub async fn start(
    command: &[String],
    data: &LaunchData,
    at: SocketAddr,
    console: &Arc<Mutex<Vec<String>>>,
) -> Result<RealJupyter, String> {
    let (program, args) = command
        .split_first()
        .ok_or("simulator.jupyter_command is empty")?;
    let dir = tempfile::Builder::new()
        .prefix("stackbinder-sim-jupyter-")
        .tempdir()
        .map_err(|e| format!("cannot make a directory for Jupyter: {e}"))?;
    let sub = |name: &str| -> Result<std::path::PathBuf, String> {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {name}: {e}"))?;
        Ok(path)
    };
    let (work, config, runtime, data_dir, ipython) = (
        sub("work")?,
        sub("config")?,
        sub("runtime")?,
        sub("data")?,
        sub("ipython")?,
    );
    // Jupyter Server reads the first, JupyterLab's own settings the second.
    for file in ["jupyter_server_config.json", "jupyter_lab_config.json"] {
        std::fs::write(config.join(file), SIMULATOR_CONFIG)
            .map_err(|e| format!("cannot write Jupyter's configuration: {e}"))?;
    }
    let base = base_path(&data.login);
    let mut child = Command::new(program)
        .args(args)
        .arg(format!("--ServerApp.base_url={base}"))
        .arg(format!("--ip={}", at.ip()))
        .arg(format!("--port={}", at.port()))
        .arg("--no-browser")
        .env("JUPYTER_TOKEN", &data.jupyter_token)
        .env("JUPYTER_CONFIG_DIR", &config)
        .env("JUPYTER_RUNTIME_DIR", &runtime)
        .env("JUPYTER_DATA_DIR", &data_dir)
        .env("IPYTHONDIR", &ipython)
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C meant for the demo reaches
        // Jupyter as the SIGTERM of the demo's shutdown instead.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {program:?} (simulator.jupyter_command): {e}"))?;
    for output in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        tokio::spawn(to_console(
            output,
            data.jupyter_token.clone(),
            console.clone(),
        ));
    }
    let mut running = RealJupyter {
        child: Some(child),
        dir: Some(dir),
    };
    let api = format!("http://{at}{base}api");
    running.answers(&api, console).await?;
    Ok(running)
}

impl RealJupyter {
    /// Wait until `api` answers, or fail when Jupyter exits or takes too long.
    async fn answers(
        &mut self,
        api: &str,
        console: &Arc<Mutex<Vec<String>>>,
    ) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if http
                .get(api)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                let last = console
                    .lock()
                    .expect("console lock")
                    .last()
                    .cloned()
                    .unwrap_or_default();
                return Err(format!(
                    "Jupyter exited ({status}) before it answered; last line: {last}"
                ));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "Jupyter did not answer {api} within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Until Jupyter exits by itself.
    pub async fn wait(mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.wait().await;
        }
    }
}

impl Drop for RealJupyter {
    fn drop(&mut self) {
        let (Some(mut child), dir) = (self.child.take(), self.dir.take()) else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Some(pid) = child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        // Reap it, and keep its directory until it is gone.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
                drop(dir);
            });
        }
    }
}

/// Copy Jupyter's output lines to the console, with the token redacted.
async fn to_console(
    output: impl AsyncRead + Unpin,
    token: String,
    console: Arc<Mutex<Vec<String>>>,
) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.replace(&token, "[redacted]");
        console
            .lock()
            .expect("console lock")
            .push(format!("jupyter: {line}"));
    }
}
