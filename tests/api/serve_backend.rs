//! `serve` drives OpenStack unless the simulated cloud is asked for by
//! name; then every page and the log say that no VM is real. The real
//! binary, over HTTP.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

const BANNER: &str = "simulated cloud: no real VMs";

/// `stackbinder serve` on a free port, with a fresh database and GitHub
/// settings (it needs them to start), its log collected as it comes.
struct Serve {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: TempDir,
}

impl Serve {
    fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("serve.db").display());
        let mut command =
            crate::helpers::serve_command(&[("STACKBINDER_DATABASE__URL", &database)]);
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (send, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Self {
            child,
            base: String::new(),
            log,
            seen: Vec::new(),
            _dir: dir,
        };
        let line = serve.wait_for_line("stackbinder serving");
        let address = line
            .split_whitespace()
            .find_map(|word| word.strip_prefix("address="))
            .expect("the serving line names the address");
        serve.base = format!("http://{address}");
        serve
    }

    /// The first log line containing `needle`, waiting for it (bounded).
    fn wait_for_line(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no log line {needle:?} ({e}); log: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    async fn get(&self, path: &str) -> (reqwest::StatusCode, String) {
        // Never follow a redirect: the login one leads to GitHub.
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_drives_openstack_when_no_backend_is_configured() {
    let mut serve = Serve::start(&[]);

    let (_, health) = serve.get("/healthz").await;
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "sqlite", "{health}");
    // Alone on its database, it takes the driver lease and drives OpenStack.
    let started = serve.wait_for_line("provisioner started");
    assert!(started.contains("cloud=\"openstack\""), "{started}");
    let (_, home) = serve.get("/").await;
    assert!(!home.contains(BANNER), "{home}");
}

#[tokio::test]
async fn serve_on_the_simulated_cloud_says_so_on_every_page_and_in_the_log() {
    let mut serve = Serve::start(&[("STACKBINDER_CLOUD__BACKEND", "simulated")]);

    let started = serve.wait_for_line("provisioner started");
    assert!(started.contains("cloud=\"simulated\""), "{started}");
    for path in ["/", "/no-such-page"] {
        let (_, page) = serve.get(path).await;
        assert!(page.contains(BANNER), "{path}: {page}");
    }
    let warning = serve.wait_for_line("this server starts no real VMs");
    assert!(warning.contains("WARN"), "{warning}");
}
