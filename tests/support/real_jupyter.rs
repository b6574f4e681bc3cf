//! A real jupyter-server (jupyterlab and ipykernel from PyPI, in the
//! virtualenv `TEST_JUPYTER_PYTHON` names) on 127.0.0.1, started with
//! `--ServerApp.base_url=/user/<login>/` and a token as on a VM, standing
//! in for the VM's Jupyter. Shared by `tests/api` and `benches/proxy.rs`.

// Each binary that includes this file uses a different part of it.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Python startup and extension loading on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The python of the Jupyter virtualenv, or None (the caller skips) when
/// `TEST_JUPYTER_PYTHON` is not set; under `CI=true` a missing Jupyter is
/// a failure, never a silent skip.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("TEST_JUPYTER_PYTHON") {
        Some(python) => Some(PathBuf::from(python)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must set TEST_JUPYTER_PYTHON to a python with jupyterlab and ipykernel"
            );
            eprintln!("skipped: TEST_JUPYTER_PYTHON is not set (a python with jupyterlab)");
            None
        }
    }
}

pub struct RealJupyter {
    pub addr: SocketAddrV4,
    pub token: String,
    /// What Jupyter logged.
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    _child: Child,
}

impl RealJupyter {
    /// Start Jupyter for `login` and wait until it listens.
    pub async fn start(python: &Path, login: &str) -> Self {
        let token = stackbinder::secret::generate();
        Self::start_on(
            python,
            login,
            &token,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        )
        .await
    }

    /// Start Jupyter for `login` with `token` on `at` (port 0: any free
    /// one; a taken port: the next free one, as Jupyter does) and wait
    /// until it listens.
    pub async fn start_on(python: &Path, login: &str, token: &str, at: SocketAddrV4) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("home");
        std::fs::create_dir(&root).expect("Jupyter's root directory");
        let mut child = Command::new(python)
            .args(["-m", "jupyter_server"])
            .arg(format!("--ServerApp.ip={}", at.ip()))
            .arg(format!("--ServerApp.port={}", at.port()))
            .arg(format!("--ServerApp.base_url=/user/{login}/"))
            .arg(format!("--IdentityProvider.token={token}"))
            .arg(format!("--ServerApp.root_dir={}", root.display()))
            .arg("--ServerApp.open_browser=False")
            // On a VM Jupyter listens on 0.0.0.0, which allows remote
            // access (a Host other than localhost); here it listens on
            // loopback, which would refuse the proxy's Host otherwise.
            .arg("--ServerApp.allow_remote_access=True")
            .arg("--allow-root")
            .env("JUPYTER_RUNTIME_DIR", dir.path().join("runtime"))
            .env("JUPYTER_CONFIG_DIR", dir.path().join("config"))
            .env("JUPYTER_DATA_DIR", dir.path().join("data"))
            .env("IPYTHONDIR", dir.path().join("ipython"))
            .env("JUPYTER_PLATFORM_DIRS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("TEST_JUPYTER_PYTHON runs");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let lines_log = log.clone();
        tokio::spawn(async move {
            let mut port_tx = Some(port_tx);
            let mut lines = BufReader::new(stderr).lines();
            let marker = format!("http://{}:", at.ip());
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find(&marker) {
                    let digits: String = line[at + marker.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let (Ok(port), Some(tx)) = (digits.parse::<u16>(), port_tx.take()) {
                        let _ = tx.send(port);
                    }
                }
                let mut log = lines_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = match tokio::time::timeout(START_TIMEOUT, port_rx).await {
            Ok(Ok(port)) => port,
            _ => panic!(
                "jupyter-server did not start within {START_TIMEOUT:?}:\n{}",
                log.lock().unwrap()
            ),
        };
        Self {
            addr: SocketAddrV4::new(*at.ip(), port),
            token: token.to_owned(),
            log,
            dir,
            _child: child,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Jupyter's root directory (its files).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("home")
    }
}

/// A TCP hop in front of Jupyter that keeps every byte sent towards it:
/// what "reached the VM", to assert on. It forwards both ways untouched.
pub struct RecordingHop {
    pub addr: SocketAddrV4,
    sent: Arc<Mutex<Vec<u8>>>,
    connections: Arc<Mutex<usize>>,
}

impl RecordingHop {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let sent = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (record, count) = (sent.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                                    if server_write.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        Self {
            addr,
            sent,
            connections,
        }
    }

    /// Everything sent towards Jupyter so far, lossily as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }

    /// The request heads sent so far (bodies left out), lower-cased.
    pub fn heads(&self) -> Vec<String> {
        const METHODS: [&str; 6] = ["GET /", "POST /", "PUT /", "DELETE /", "PATCH /", "HEAD /"];
        let sent = self.sent();
        sent.split("\r\n\r\n")
            .filter_map(|part| {
                // A head may follow the body of the request before it.
                let line_end = part.find("\r\n").unwrap_or(part.len());
                let start = METHODS
                    .iter()
                    .filter_map(|m| part[..line_end].rfind(m))
                    .max()?;
                part[start..line_end]
                    .ends_with(" HTTP/1.1")
                    .then(|| part[start..].to_ascii_lowercase())
            })
            .collect()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}
