//! `serve` warns at start when its public URL is https (so a TLS proxy is
//! in front) but `server.trust_forwarded_for` is off: every client then
//! has the proxy's address, and per-address limits lump all users together.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Start `serve` with `public_url` and `trust`, and return what it logged
/// up to the line saying it serves.
fn start_up_log(public_url: &str, trust: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .arg("serve")
        .env_remove("STACKBINDER_CONFIG")
        .env("RUST_LOG", "stackbinder=info")
        .env(
            "STACKBINDER_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        )
        .env("STACKBINDER_SERVER__BIND", "127.0.0.1:0")
        .env("STACKBINDER_SERVER__PUBLIC_URL", public_url)
        .env("STACKBINDER_SERVER__TRUST_FORWARDED_FOR", trust.to_string())
        .env("STACKBINDER_GITHUB__CLIENT_ID", "stackbinder-test-client")
        .env("STACKBINDER_GITHUB__CLIENT_SECRET", "not-a-real-secret")
        .env("STACKBINDER_CLOUD__BACKEND", "simulated")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains("stackbinder serving") {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start within 30 s:\n{log}");
            }
        }
    }
    child.kill().expect("serve stops");
    child.wait().unwrap();
    log
}

#[test]
fn serve_warns_about_an_https_public_url_without_trusted_forwarding() {
    let log = start_up_log("https://binder.example.org", false);
    assert!(
        log.contains("WARN") && log.contains("server.trust_forwarded_for is off"),
        "{log}"
    );
}

#[test]
fn serve_does_not_warn_when_forwarding_is_trusted_or_there_is_no_tls() {
    for (url, trust) in [
        ("https://binder.example.org", true),
        ("http://127.0.0.1:8080", false),
    ] {
        let log = start_up_log(url, trust);
        assert!(
            !log.contains("trust_forwarded_for"),
            "{url}, {trust}: {log}"
        );
    }
}
