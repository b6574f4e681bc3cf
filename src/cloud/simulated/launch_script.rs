//! A simulated VM's launch: what `cloud-init/launch.sh` does on a real one
//! once it has its job (`agent`), acted out in-process. It reports its progress to stackbinder's callback
//! endpoint with the per-VM secret, the way the script retries, and then
//! serves the Jupyter stand-in (`jupyter_stand_in`) or runs a real
//! JupyterLab (`simulator.jupyter_command`, see `real_jupyter`).

use super::Timings;
use super::jupyter_stand_in::Jupyter;
use super::real_jupyter;
use crate::cloud_init::{CallbackReport, LaunchData};
use crate::domain::Progress;
use axum::http::StatusCode;
use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub enum VmScript {
    /// Serves the stand-in.
    Succeeds,
    /// Runs this real JupyterLab command (`simulator.jupyter_command`).
    RealJupyter(Vec<String>),
    BuildFails(Vec<String>),
    /// Says `ready` but serves nothing (a crashed container, a firewall).
    JupyterNeverAnswers,
    /// Says `ready` with this port, where someone else's Jupyter listens.
    ExternalJupyter(u16),
}

/// Act out the launch script. Runs until the server is deleted (aborted),
/// or until stackbinder says it no longer expects this VM (409).
/// `prebuilt`: the VM built this environment ahead (`agent::prebuilt`).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    http: reqwest::Client,
    data: LaunchData,
    prebuilt: bool,
    address: Ipv4Addr,
    jupyter: Jupyter,
    script: VmScript,
    timings: Timings,
    console: Arc<Mutex<Vec<String>>>,
) {
    let reporter = Reporter {
        http,
        data,
        console,
    };
    let mut cloning = Vec::new();
    if reporter.data.home_volume_id.is_some() {
        // What launch.sh says once it has mounted the home volume.
        cloning.push("stackbinder: your storage is mounted at /home/jovyan/work".to_owned());
    }
    cloning.push(format!(
        "Cloning {} at {}",
        reporter.data.repo, reporter.data.git_ref
    ));
    if reporter
        .report(1, Some(Progress::Cloning), None, cloning)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    tokio::time::sleep(timings.clone).await;
    let building = if prebuilt {
        vec!["stackbinder: environment prebuilt: starting without a build".into()]
    } else {
        vec![
            "Picked Git content provider.".into(),
            "Using PythonBuildPack builder".into(),
            "Step 1/52 : FROM docker.io/library/buildpack-deps:jammy".into(),
            "Step 27/52 : RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install -r requirements.txt".into(),
        ]
    };
    if reporter
        .report(2, Some(Progress::Building), None, building)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    tokio::time::sleep(timings.build).await;
    if let VmScript::BuildFails(lines) = script {
        reporter
            .report(3, Some(Progress::Failed), None, lines)
            .await;
        return;
    }
    if let VmScript::ExternalJupyter(port) = script {
        reporter
            .report(4, Some(Progress::Ready), Some(port), Vec::new())
            .await;
        return;
    }
    let listener = match jupyter.bind(address).await {
        Some(l) => l,
        None => jupyter
            .bind(Ipv4Addr::LOCALHOST)
            .await
            .expect("a loopback port is free"),
    };
    let bound = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((address, jupyter.port())));
    let port = bound.port();
    let starting = vec![format!("Starting Jupyter on port {port}")];
    if reporter
        .report(3, Some(Progress::Starting), None, starting)
        .await
        == Delivery::Unwanted
    {
        return;
    }
    if let VmScript::RealJupyter(command) = script {
        // The real one takes the port over; it is free again once dropped.
        drop(listener);
        let running = real_jupyter::start(&command, &reporter.data, bound, &reporter.console).await;
        match running {
            Ok(real) => {
                let answers = vec![format!("JupyterLab answers at {bound}")];
                if reporter
                    .report(4, Some(Progress::Ready), Some(port), answers)
                    .await
                    == Delivery::Unwanted
                {
                    return;
                }
                // Runs until the server is deleted: this task is aborted,
                // and dropping `real` stops Jupyter.
                real.wait().await;
            }
            Err(why) => {
                reporter
                    .report(4, Some(Progress::Failed), None, vec![why])
                    .await;
            }
        }
        return;
    }
    tokio::time::sleep(timings.start).await;
    let running = vec!["Jupyter Server 2.14.0 is running".into()];
    let ready = reporter.report(4, Some(Progress::Ready), Some(port), running);
    if matches!(script, VmScript::JupyterNeverAnswers) {
        drop(listener);
        ready.await;
        return;
    }
    // Jupyter answers before the VM says `ready`, as on a real VM (the
    // script reports once Jupyter's /api answers): stackbinder's probe
    // must never wait for a Jupyter that is not serving yet.
    let serving = axum::serve(listener, jupyter.router()).into_future();
    tokio::pin!(serving);
    tokio::select! {
        _ = &mut serving => return,
        delivery = ready => if delivery == Delivery::Unwanted {
            return;
        },
    }
    let _ = serving.await;
}

/// How `launch.sh` retries a report (`STACKBINDER_RETRIES`,
/// `STACKBINDER_RETRY_SECONDS`, curl's `--max-time`): about two minutes.
const ATTEMPTS: u32 = 40;
const RETRY_DELAY: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Taken,
    /// 409: stackbinder no longer expects this VM; the script stops.
    Unwanted,
    /// Refused for good (401, 400, 413...), or no answer after every attempt:
    /// the script goes on without it, as `launch.sh` does.
    Lost,
}

/// What one attempt came to.
enum Answer {
    Taken,
    /// 409: stackbinder no longer expects this VM.
    Unwanted,
    /// A refusal for good: 400, 401, 413...
    Refused(StatusCode),
    /// Overloaded, failing or unreachable: try again after this long.
    Retry(Duration, String),
}

/// The answer to one attempt, judged the way `launch.sh` does: retry while
/// stackbinder is overloaded (429, as long as `Retry-After` says), failing
/// (5xx) or unreachable; stop on 409; give up on any other refusal.
fn judge(sent: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = match sent {
        Ok(response) => response,
        Err(e) => return Answer::Retry(RETRY_DELAY, format!("stackbinder is unreachable ({e})")),
    };
    let status = response.status();
    if status.is_success() {
        Answer::Taken
    } else if status == StatusCode::CONFLICT {
        Answer::Unwanted
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(RETRY_DELAY, Duration::from_secs);
        Answer::Retry(wait, "stackbinder asks to slow down (HTTP 429)".into())
    } else if status.is_server_error() {
        Answer::Retry(
            RETRY_DELAY,
            format!("stackbinder answered HTTP {}", status.as_u16()),
        )
    } else {
        Answer::Refused(status)
    }
}

struct Reporter {
    http: reqwest::Client,
    data: LaunchData,
    console: Arc<Mutex<Vec<String>>>,
}

impl Reporter {
    /// Print a line on the VM's console, as the script does.
    fn say(&self, line: &str) {
        push_console(&self.console, line);
    }

    /// POST one report, retrying like the script's `post` does; every
    /// retry and its reason is on the console.
    async fn report(
        &self,
        seq: i64,
        phase: Option<Progress>,
        port: Option<u16>,
        log: Vec<String>,
    ) -> Delivery {
        for line in &log {
            self.say(line);
        }
        let body = CallbackReport {
            vm: self.data.vm_id,
            seq,
            phase,
            port,
            log,
        };
        for _ in 0..ATTEMPTS {
            let sent = self
                .http
                .post(self.data.callback_url.clone())
                .bearer_auth(&self.data.callback_secret)
                .timeout(ATTEMPT_TIMEOUT)
                .json(&body)
                .send()
                .await;
            match judge(sent) {
                Answer::Taken => return Delivery::Taken,
                Answer::Unwanted => {
                    self.say("stackbinder no longer expects this VM (HTTP 409); stopping");
                    return Delivery::Unwanted;
                }
                Answer::Refused(status) => {
                    self.say(&format!(
                        "stackbinder refused a report (HTTP {})",
                        status.as_u16()
                    ));
                    return Delivery::Lost;
                }
                Answer::Retry(wait, why) => {
                    self.say(&format!(
                        "report {seq} not taken: {why}; trying again in {} s",
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.say(&format!(
            "stackbinder did not answer after {ATTEMPTS} attempts; going on"
        ));
        Delivery::Lost
    }
}

/// A line of the VM's launch script on its console.
pub(super) fn push_console(console: &Mutex<Vec<String>>, line: &str) {
    console
        .lock()
        .expect("console lock")
        .push(format!("stackbinder-launch: {line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        let mut response = axum::http::Response::builder().status(status);
        if let Some(seconds) = retry_after {
            response = response.header("retry-after", seconds);
        }
        judge(Ok(reqwest::Response::from(response.body("").unwrap())))
    }

    #[test]
    fn reports_are_retried_as_launch_sh_does() {
        assert!(matches!(answer(200, None), Answer::Taken));
        assert!(matches!(answer(409, None), Answer::Unwanted));
        assert!(matches!(answer(401, None), Answer::Refused(s) if s == StatusCode::UNAUTHORIZED));
        assert!(matches!(answer(413, None), Answer::Refused(_)));
        assert!(
            matches!(answer(429, Some("7")), Answer::Retry(d, _) if d == Duration::from_secs(7))
        );
        assert!(matches!(answer(429, None), Answer::Retry(d, _) if d == RETRY_DELAY));
        assert!(matches!(answer(503, None), Answer::Retry(d, _) if d == RETRY_DELAY));
        assert!(matches!(answer(500, Some("60")), Answer::Retry(d, _) if d == RETRY_DELAY));
    }
}
