//! `stackbinder serve` (the real binary, `serve_command`) as one replica of
//! several on one database: started as a child process, its log collected,
//! driven through `/api/v1` with a user's API token, its driver's role read
//! from `/healthz`, killed with `kill -9`. Used by the replica tests on the
//! fake OpenStack (`tests/openstack/replicas.rs`) and on the real control
//! plane (`tests/conformance/replicas.rs`).

use super::REPO;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::cloud_init::parse_boot_data;
use stackbinder::domain::{GithubId, Login, VmId};
use stackbinder::store::{NewToken, Store};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Poll `check` every 20 ms until it gives a value, at most `limit`.
pub async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A registered user (GitHub id 7 000 000 + `n`, login `student<n>`) with
/// an API token for their VM, written into `store`: the token. (`serve`
/// logs in with GitHub only.)
pub async fn user_with_token(store: &Store, n: i64) -> String {
    let id = GithubId(7_000_000 + n);
    let login = Login::parse(&format!("student{n}")).unwrap();
    store.record_login(id, &login).await.unwrap();
    store.register(id, "the replica test").await.unwrap();
    let secret = format!("replica-test-token-{n}-{}", uuid::Uuid::new_v4().simple());
    let hash = stackbinder::secret::hash(&secret);
    store
        .create_token(NewToken {
            github_id: id,
            label: "replica test",
            secret_hash: &hash,
            scopes: "vm:read vm:launch vm:delete",
            expires_at: chrono::Utc::now() + chrono::Duration::days(1),
        })
        .await
        .unwrap();
    secret
}

/// `stackbinder serve` as a child process, its log collected as it comes.
pub struct Replica {
    pub name: &'static str,
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    /// How long it may take to start, or to become leader or standby.
    patience: Duration,
}

impl Replica {
    /// Start it and wait (without blocking the test's runtime, which may
    /// serve the relay to its database) until it serves, at most
    /// `patience`.
    pub async fn start(name: &'static str, env: &[(&str, &str)], patience: Duration) -> Self {
        let mut command = super::serve_command(env);
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("stackbinder serving")
                    && let Some(address) = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                    && let Some(tx) = address_tx.take()
                {
                    let _ = tx.send(address.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = match tokio::time::timeout(patience, address_rx).await {
            Ok(Ok(address)) => address,
            _ => panic!("replica {name} did not serve: {:#?}", log.lock().unwrap()),
        };
        Self {
            name,
            child,
            base: format!("http://{address}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            patience,
        }
    }

    /// `kill -9`: no shutdown, no last write.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// `/healthz`'s `driver`, if it answers 200.
    pub async fn driver_role(&self) -> Option<String> {
        let response = self.healthz(Duration::from_secs(2)).await?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let health: Value = response.json().await.ok()?;
        assert_eq!(health["database"], "postgres", "{health}");
        health["driver"].as_str().map(str::to_owned)
    }

    /// `/healthz`'s status, if it answers within 10 s.
    pub async fn health_status(&self) -> Option<StatusCode> {
        let response = self.healthz(Duration::from_secs(10)).await?;
        Some(response.status())
    }

    /// `/healthz`'s answer, if it comes within `limit`.
    async fn healthz(&self, limit: Duration) -> Option<reqwest::Response> {
        self.http
            .get(format!("{}/healthz", self.base))
            .timeout(limit)
            .send()
            .await
            .ok()
    }

    /// Wait until `/healthz` says `role`; how long that took.
    pub async fn wait_for_role(&self, role: &str) -> Duration {
        let started = Instant::now();
        let what = format!("replica {} to be {role}", self.name);
        poll(&what, self.patience, || async {
            (self.driver_role().await.as_deref() == Some(role)).then_some(())
        })
        .await;
        started.elapsed()
    }

    pub async fn launch(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/vm", self.base))
            .bearer_auth(token)
            .json(&json!({"repo": REPO}))
            .send()
            .await
            .expect("the launch is answered")
    }

    /// Launch, expecting it accepted: the VM's id.
    pub async fn launch_vm(&self, token: &str) -> VmId {
        let response = self.launch(token).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let view: Value = response.json().await.unwrap();
        view["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn delete(&self, token: &str) {
        let response = self
            .http
            .delete(format!("{}/api/v1/vm", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    /// What the VM's launch script would report once Jupyter runs.
    pub async fn report_ready(&self, user_data: &str, jupyter_port: u16) {
        let data = parse_boot_data(user_data).expect("boot data in the user data");
        let report = json!({"vm": data.vm_id, "seq": 1, "phase": "ready", "port": jupyter_port,
            "log": ["Jupyter Server 2.14.0 is running"]});
        let url = format!("{}/api/vm/callback", self.base);
        let response = self
            .http
            .post(url)
            .bearer_auth(&data.callback_secret)
            .json(&report)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("replica {} log:\n{}", self.name, self.log().join("\n"));
        }
    }
}
