//! Secrets never reach the logs: run the real binary (`demo`) with every
//! log level on, go through the whole journey over HTTP, and look for the
//! registration secret, the session cookie, the CSRF token, the VM's
//! callback secret, the Jupyter token and a personal access token used on
//! `/api/v1` in what it logged.

use crate::helpers::{REPO, csrf_from};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn no_secret_is_ever_logged() {
    // Arrange: the demo, logging everything.
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackbinder"))
        .args(["demo", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env_remove("STACKBINDER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let (mut base, mut link) = (String::new(), String::new());
    for line in (&mut stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("open:") {
            base = url.trim().trim_end_matches('/').to_owned();
        }
        if let Some(url) = line.trim().strip_prefix("registration link:") {
            link = url.trim().to_owned();
            break;
        }
    }
    let secret = link.rsplit('/').next().unwrap().to_owned();
    assert!(secret.len() > 30, "the demo printed its registration link");

    // Act: the whole journey.
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = text(client.get(format!("{base}/login"))).await;
    let csrf = csrf_from(&page);
    client
        .post(format!("{base}/login/demo"))
        .form(&[("csrf", csrf.as_str()), ("login", "ada"), ("next", "/")])
        .send()
        .await
        .unwrap();
    let page = text(client.get(&link)).await;
    let csrf = csrf_from(&page);
    client
        .post(&link)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    // A personal access token, made on the tokens page and used below.
    let page = text(client.post(format!("{base}/tokens")).form(&[
        ("csrf", csrf.as_str()),
        ("label", "script"),
        ("days", "30"),
        ("vm_read", "on"),
    ]))
    .await;
    let start = page.find("id=\"new-token\">").expect("the token is shown") + 15;
    let api_token = page[start..start + page[start..].find('<').unwrap()].to_owned();
    // The API is used without the cookie: a client of its own.
    let plain = reqwest::Client::new();
    let bearer = |method: reqwest::Method, path: &str, token: &str| {
        plain
            .request(method, format!("{base}{path}"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        bearer(reqwest::Method::GET, "/api/v1/vm", &api_token)
            .await
            .unwrap()
            .status(),
        reqwest::StatusCode::NOT_FOUND
    );
    client
        .post(format!("{base}/VM_start"))
        .form(&[("csrf", csrf.as_str()), ("giturl", REPO)])
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let jupyter_url = loop {
        let view: serde_json::Value = client
            .get(format!("{base}/api/vm"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(url) = view["jupyter_url"].as_str() {
            break url.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the demo VM became ready: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let token = jupyter_url.split("token=").nth(1).unwrap().to_owned();
    // The token on a request that works, one it lacks the scope for, and
    // one with a token that does not exist (a typo of it).
    for (method, path, token, expected) in [
        (reqwest::Method::GET, "/api/v1/vm", api_token.clone(), 200),
        (
            reqwest::Method::DELETE,
            "/api/v1/vm",
            api_token.clone(),
            403,
        ),
        (
            reqwest::Method::GET,
            "/api/v1/vm",
            format!("{api_token}x"),
            401,
        ),
    ] {
        let response = bearer(method, path, &token).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
    }
    let cookies = jar
        .cookies(&base.parse().unwrap())
        .map(|c| c.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let session = cookies
        .split("stackbinder_session=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = text(client.get(format!("{base}/VM_delete"))).await;
    let csrf = csrf_from(&page);
    client
        .post(format!("{base}/VM_delete"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Stop it (SIGTERM: a clean shutdown) and read everything it logged.
    terminate(child.id());
    let status = child.wait().unwrap();
    let logs = stderr_reader.join().unwrap();

    // Assert
    assert!(
        status.success() || status.code().is_none(),
        "the demo stops cleanly: {status}"
    );
    assert!(
        logs.contains("launch recorded"),
        "the logs are there at all"
    );
    for (what, value) in [
        ("registration secret", secret.as_str()),
        ("Jupyter token", token.as_str()),
        ("session cookie", session.as_str()),
        ("CSRF token", csrf.as_str()),
        ("API token", api_token.as_str()),
        // Its random part, in case a log cut the prefix off.
        ("API token's secret", api_token.trim_start_matches("sbt_")),
    ] {
        assert!(!value.is_empty());
        assert!(!logs.contains(value), "the {what} appears in the logs");
    }
}

/// Send `request` and read the page it answers.
async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// SIGTERM without a libc dependency: the `kill` command.
fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
