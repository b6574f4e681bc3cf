//! The simulated VM with a real JupyterLab (`simulator.jupyter_command`),
//! started as `launch.sh` starts it in the container: under
//! `/user/<login>/`, on the VM's address, with the launch data's token; a
//! kernel runs code over its WebSocket; deleting the VM stops it. Needs
//! `TEST_JUPYTER_PYTHON`, a python with jupyterlab and ipykernel.

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use stackbinder::config::JupyterAccess;
use stackbinder::provision::jupyter;
use std::num::NonZero;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// JupyterLab takes a while to start on a busy 2-core machine.
const JUPYTER_WAIT: Duration = Duration::from_secs(180);

/// The python of `TEST_JUPYTER_PYTHON`; under CI its absence is a failure.
pub fn jupyter_python() -> Option<String> {
    match std::env::var("TEST_JUPYTER_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI must set TEST_JUPYTER_PYTHON to a python with jupyterlab and ipykernel")
        }
        _ => {
            eprintln!("skipped: set TEST_JUPYTER_PYTHON to a python with jupyterlab and ipykernel");
            None
        }
    }
}

/// An `execute_request` of `code` in Jupyter's JSON WebSocket protocol.
fn execute_request(code: &str) -> Message {
    let header = json!({"msg_id": "sb-test-1", "username": "test", "session": "sb-test",
        "msg_type": "execute_request", "version": "5.3", "date": chrono::Utc::now()});
    let message = json!({"header": header, "parent_header": {}, "metadata": {},
        "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": false,
            "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}});
    Message::text(message.to_string())
}

/// The app with simulated VMs that run a real JupyterLab from `python`.
async fn with_real_jupyter(python: String) -> TestApp {
    spawn_app_with(TestOptions {
        configure: |c| {
            c.launch.start_timeout_seconds = NonZero::new(JUPYTER_WAIT.as_secs()).unwrap()
        },
        config: Some(Box::new(move |c| {
            c.simulator.jupyter_command = vec![python, "-m".into(), "jupyterlab".into()];
        })),
        ..TestOptions::default()
    })
    .await
}

/// Poll `browser`'s VM until it is ready (the real Jupyter answers).
async fn ready(browser: &Browser) -> Value {
    let deadline = Instant::now() + JUPYTER_WAIT;
    loop {
        let view = browser.api_vm_json().await;
        if view["state"] == "ready" {
            return view;
        }
        assert!(view["state"] != "failed", "{view:#}");
        assert!(Instant::now() < deadline, "not ready in time: {view:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_simulated_vm_runs_a_real_jupyterlab_that_executes_code_and_stops_with_the_vm() {
    let Some(python) = jupyter_python() else {
        return;
    };
    // Arrange
    let app = with_real_jupyter(python).await;
    app.login_registered("Katherine-J").await;

    // Act: launch and wait for the real Jupyter to answer.
    app.launch(REPO, "main", "lab").await;
    ready(&app.browser).await;
    let data = app.launch_data(0).await;
    let vm = app.store().vm(data.vm_id).await.unwrap().unwrap();
    let base = jupyter::upstream(&vm, JupyterAccess::Proxy).unwrap();
    assert_eq!(base.path(), "/user/Katherine-J/");
    let client = plain_client();
    let auth = format!("token {}", data.jupyter_token);

    // Assert: Jupyter Server's API under the base URL, behind the token.
    let api: Value = client
        .get(base.join("api").unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(api["version"].is_string(), "{api}");
    let status = client
        .get(base.join("api/status").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 403, "the token is required");
    let status = client
        .get(base.join("api/status").unwrap())
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    // Its notebooks are in an empty directory of its own.
    let contents: Value = client
        .get(base.join("api/contents").unwrap())
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contents["content"], json!([]), "{contents}");

    // A kernel runs 1+1 over its WebSocket.
    let kernel: Value = client
        .post(base.join("api/kernels").unwrap())
        .header("authorization", &auth)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kernel_id = kernel["id"].as_str().unwrap_or_else(|| panic!("{kernel}"));
    let mut ws = base
        .join(&format!(
            "api/kernels/{kernel_id}/channels?token={}",
            data.jupyter_token
        ))
        .unwrap();
    ws.set_scheme("ws").unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
    socket.send(execute_request("1+1")).await.unwrap();
    let result = tokio::time::timeout(JUPYTER_WAIT, async {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["msg_type"] == "execute_result" {
                return message["content"]["data"]["text/plain"].clone();
            }
        }
        Value::Null
    })
    .await
    .expect("the kernel answers in time");
    assert_eq!(result, "2");

    // Act: delete the VM.
    app.delete_vm().await;
    app.wait_for_state("deleted").await;

    // Assert: Jupyter stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(base.join("api").unwrap()).send().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "Jupyter still answers after the delete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The interface probe against a real JupyterLab without the classic
/// Notebook (the environment of `TEST_JUPYTER_PYTHON`): `/lab` is there,
/// `/tree` is not, and the status says so for the launch that asked for it.
#[tokio::test]
async fn a_real_jupyterlab_provides_lab_and_lacks_the_classic_notebook() {
    let Some(python) = jupyter_python() else {
        return;
    };
    let app = with_real_jupyter(python).await;
    let launch = |login: &'static str, ide: &'static str| {
        let browser = app.new_browser();
        async move {
            browser.login_registered(login).await;
            let csrf = browser.csrf().await;
            let response = browser
                .post_form(
                    "/VM_start",
                    &[("csrf", csrf.as_str()), ("giturl", REPO), ("ide", ide)],
                )
                .await;
            assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
            browser
        }
    };
    let lab = launch("Katherine-J", "lab").await;
    let notebook = launch("Dorothy-V", "notebook").await;

    let (lab, notebook) = tokio::join!(ready(&lab), ready(&notebook));

    assert!(lab["ide_missing"].is_null(), "{lab:#}");
    assert!(
        lab["jupyter_url"].as_str().unwrap().contains("/lab?token="),
        "{lab:#}"
    );
    let said = notebook["ide_missing"].as_str().expect("said");
    assert!(said.contains("does not provide Classic Notebook"), "{said}");
}
