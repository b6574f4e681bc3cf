//! Jupyter behind stackbinder's proxy (`cloud.jupyter_access = "proxy"`,
//! the default): no floating IP, the VM's fixed address, Jupyter under
//! `/user/<login>/`, the link through stackbinder, and the VMs reporting
//! to `server.callback_url`. And the simulated VM's Jupyter (the stand-in,
//! or a real JupyterLab) as the proxy will find it.

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::cloud::simulated::Op;
use stackbinder::config::JupyterAccess;
use stackbinder::provision::jupyter;
use stackbinder::store::VmRecord;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Url;

/// The record of the `index`th VM the cloud created.
async fn record(app: &TestApp, index: usize) -> VmRecord {
    let id = app.launch_data(index).await.vm_id;
    app.store().vm(id).await.unwrap().expect("the VM exists")
}

#[tokio::test]
async fn a_proxied_launch_attaches_no_floating_ip_and_links_through_stackbinder() {
    // Arrange: a pool is configured, but the proxy needs none of it.
    let app = spawn_app_with(TestOptions {
        floating_ip_pool: Some("public".into()),
        ..TestOptions::default()
    })
    .await;
    assert_eq!(app.config.cloud.jupyter_access, JupyterAccess::Proxy);
    app.login_registered("Grace-H").await;

    // Act
    assert_is_redirect_to(
        &app.launch(REPO, "main", "lab/tree/index.ipynb").await,
        "/VM_status",
    );
    let view = app.wait_for_state("ready").await;

    // Assert: no floating IP was asked for or made.
    assert_eq!(app.cloud.calls(Op::AttachFloatingIp), 0);
    assert_eq!(app.cloud.floating_ip_count(), 0);
    let vm = record(&app, 0).await;
    assert!(vm.floating_ip.is_none());
    assert_eq!(view["address"], vm.address.clone().unwrap().as_str());
    // The VM learns whose it is, for Jupyter's base URL, and reports to
    // the public URL (no callback_url is set).
    let data = app.launch_data(0).await;
    assert_eq!(data.login, "Grace-H");
    assert_eq!(
        data.callback_url.as_str(),
        format!("{}/api/vm/callback", app.base)
    );
    // The link goes through stackbinder, with the token for the first visit.
    assert_eq!(
        view["jupyter_url"],
        format!(
            "{}/user/Grace-H/lab/tree/index.ipynb?token={}",
            app.base, data.jupyter_token
        )
    );
    // stackbinder found Jupyter at the fixed address, under the base URL.
    let upstream = jupyter::upstream(&vm, JupyterAccess::Proxy).unwrap();
    assert_eq!(upstream.host_str(), vm.address.as_deref());
    assert_eq!(upstream.path(), "/user/Grace-H/");
    let events = app.store().recent_events(vm.id, 100).await.unwrap();
    assert!(
        events.iter().any(|e| e
            .message
            .ends_with(&format!("Jupyter answers at {upstream}"))),
        "{events:#?}"
    );

    // The delete has no floating IP to release.
    app.delete_vm().await;
    app.wait_for_state("deleted").await;
    assert_eq!(app.cloud.calls(Op::ReleaseFloatingIp), 0);
}

#[tokio::test]
async fn with_floating_ips_the_link_goes_straight_to_the_vm_under_its_base_url() {
    let app = spawn_app_with(TestOptions {
        floating_ip_pool: Some("public".into()),
        jupyter_access: JupyterAccess::FloatingIp,
        ..TestOptions::default()
    })
    .await;
    app.login_registered("hedy").await;
    app.launch(REPO, "main", "lab").await;
    let view = app.wait_for_state("ready").await;

    let vm = record(&app, 0).await;
    let fip = vm.floating_ip.clone().expect("a floating IP");
    let link = Url::parse(view["jupyter_url"].as_str().unwrap()).unwrap();
    assert_eq!(link.host_str(), Some(fip.as_str()));
    assert_eq!(link.path(), "/user/hedy/lab");
    let page = plain_client().get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Simulated Jupyter"));
}

/// A server on 127.0.0.1 that records the callbacks it receives and
/// relays the VMs' requests for their job to the app at `app` (set once
/// the app runs).
async fn callback_recorder() -> (Url, Arc<Mutex<Vec<Value>>>, Arc<Mutex<String>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app_base = Arc::new(Mutex::new(String::new()));
    let keep = received.clone();
    let relay_to = app_base.clone();
    let app = axum::Router::new()
        .route(
            "/api/vm/callback",
            axum::routing::post(move |axum::Json(report): axum::Json<Value>| {
                let keep = keep.clone();
                async move {
                    keep.lock().unwrap().push(report);
                    axum::Json(json!({"status": "applied"}))
                }
            }),
        )
        .route(
            "/api/vm/assignment",
            axum::routing::get(move |request: axum::extract::Request| {
                let base = relay_to.lock().unwrap().clone();
                async move {
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    let mut relayed =
                        plain_client().get(format!("{base}/api/vm/assignment?{query}"));
                    if let Some(secret) = request.headers().get("authorization") {
                        relayed = relayed.header("authorization", secret);
                    }
                    let answer = relayed.send().await.unwrap();
                    (answer.status(), answer.bytes().await.unwrap())
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received, app_base)
}

#[tokio::test]
async fn the_vms_report_to_the_callback_url_when_one_is_set() {
    // Arrange: the "private address" of the server is another listener.
    let (callback, received, app_base) = callback_recorder().await;
    let wanted = callback.join("api/vm/callback").unwrap();
    let app = spawn_app_with(TestOptions {
        config: Some(Box::new(move |c| c.server.callback_url = Some(callback))),
        ..TestOptions::default()
    })
    .await;
    *app_base.lock().unwrap() = app.base.clone();
    app.login_registered("ida").await;

    // Act
    app.launch(REPO, "main", "").await;
    app.wait_for_state("building").await;

    // Assert: the launch data names it, and the VM reports there.
    assert_eq!(app.launch_data(0).await.callback_url, wanted);
    let deadline = tokio::time::Instant::now() + WAIT;
    while received.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no report arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let first = received.lock().unwrap()[0].clone();
    assert_eq!(first["phase"], "cloning");
    assert_eq!(first["vm"], app.launch_data(0).await.vm_id.to_string());
    let view = app.api_vm_json().await;
    assert!(view["progress"].is_null(), "nothing reached the public URL");
}

#[tokio::test]
async fn the_stand_in_serves_under_the_owners_base_url_and_echoes_websockets() {
    // Arrange: a ready VM, reached where the proxy reaches it.
    let app = spawn_app().await;
    app.login_registered("ada").await;
    app.launch(REPO, "main", "lab").await;
    app.wait_for_state("ready").await;
    let vm = record(&app, 0).await;
    let token = vm.jupyter_token.clone();
    let base = jupyter::upstream(&vm, JupyterAccess::Proxy).unwrap();
    let client = plain_client();
    let get = |url: Url| client.get(url).send();

    // Jupyter's API under the base URL, and nothing outside it.
    assert_eq!(get(base.join("api").unwrap()).await.unwrap().status(), 200);
    let root = base.join("/api").unwrap();
    assert_eq!(get(root).await.unwrap().status(), 404);

    // Pages want the token once; the cookie it earns does for the rest.
    let no_token = get(base.join("lab").unwrap()).await.unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let first = get(base.join(&format!("lab?token={token}")).unwrap())
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/user/ada/"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(base.join("lab/tree/x.ipynb").unwrap())
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("/user/ada/static/simulated.js"), "{html}");
    let script = get(base.join("static/simulated.js").unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains("api/kernels/simulated/channels"),
        "{script}"
    );

    // A WebSocket on the kernel channels path echoes, with the cookie...
    let mut ws_url = base.join("api/kernels/k1/channels").unwrap();
    ws_url.set_scheme("ws").unwrap();
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("cookie", pair.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    for message in [
        Message::text("{\"msg_type\": \"execute_request\"}"),
        Message::binary(vec![0u8, 1, 2, 255]),
    ] {
        socket.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket stays open")
            .unwrap();
        assert_eq!(echoed, message);
    }
    socket.close(None).await.unwrap();

    // ...and refuses the handshake without token or cookie.
    let refused = tokio_tungstenite::connect_async(ws_url.as_str()).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}
