//! The proxy in front of a real jupyter-server (see
//! `tests/support/real_jupyter.rs`): what the owner can do through it, what
//! nobody else can, and what reached Jupyter.

#[path = "../support/real_jupyter.rs"]
pub(crate) mod real_jupyter;

use crate::helpers::{Browser, REPO, TestApp, spawn_app};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use real_jupyter::{RealJupyter, RecordingHop};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stackbinder::cloud::simulated::Scenario;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

/// Starting a kernel and running a cell on a busy machine.
const KERNEL_WAIT: Duration = Duration::from_secs(90);

/// `app` with `login`'s VM ready, its Jupyter a real one behind a hop.
async fn owner_with_real_jupyter(login: &str) -> Option<(TestApp, RealJupyter, RecordingHop)> {
    let python = real_jupyter::python()?;
    let jupyter = RealJupyter::start(&python, login).await;
    let hop = RecordingHop::start(jupyter.addr.into()).await;
    let app = spawn_app().await;
    app.cloud.push_scenario(Scenario::ExternalJupyter(hop.addr));
    app.login_registered(login).await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    Some((app, jupyter, hop))
}

/// A cookie's value from a `Cookie` header.
fn cookie_value(header: &str, name: &str) -> Option<String> {
    header
        .split("; ")
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

/// Open a WebSocket to `path` as `browser` would from a page of `origin`,
/// marked `x-test-who: <who>` so the hop can tell who reached Jupyter.
async fn websocket(
    browser: &Browser,
    path: &str,
    origin: &str,
    who: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tungstenite::Error,
> {
    let url = browser.url(path).replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(cookies) = browser.cookie_header(path) {
        request
            .headers_mut()
            .insert("cookie", cookies.parse().unwrap());
    }
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    request
        .headers_mut()
        .insert("x-test-who", who.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn status_of(error: &tungstenite::Error) -> Option<u16> {
    match error {
        tungstenite::Error::Http(response) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// Run `code` over the kernel's WebSocket and return its `text/plain` result.
async fn execute(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    code: &str,
) -> String {
    let msg_id = uuid::Uuid::new_v4().to_string();
    let request = json!({
        "header": {
            "msg_id": msg_id, "username": "test", "session": uuid::Uuid::new_v4().to_string(),
            "msg_type": "execute_request", "version": "5.3", "date": chrono::Utc::now().to_rfc3339(),
        },
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {
            "code": code, "silent": false, "store_history": false, "user_expressions": {},
            "allow_stdin": false, "stop_on_error": true,
        },
    });
    ws.send(Message::text(request.to_string())).await.unwrap();
    let result = tokio::time::timeout(KERNEL_WAIT, async {
        while let Some(message) = ws.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["msg_type"] == "execute_result"
                && message["parent_header"]["msg_id"] == msg_id
            {
                return message["content"]["data"]["text/plain"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
        }
        panic!("the kernel WebSocket closed before the result came");
    })
    .await;
    result.expect("the kernel answers within the bound")
}

#[tokio::test]
async fn the_owner_uses_a_real_jupyter_through_the_proxy_and_nobody_else_can() {
    let Some((app, jupyter, hop)) = owner_with_real_jupyter("alice").await else {
        return;
    };
    let origin = app.base.clone();

    // The first visit carries the token (the status page's link); Jupyter
    // then keeps its own login cookie, scoped to /user/alice/.
    let (status, page) = app
        .get_page(&format!("/user/alice/lab?token={}", jupyter.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("JupyterLab"), "{page}");
    let (status, tree) = app.get_page("/user/alice/lab/tree").await;
    assert_eq!(status, StatusCode::OK, "the tree page, by Jupyter's cookie");
    assert!(
        tree.contains("/user/alice/"),
        "Jupyter knows its base URL: {tree}"
    );
    let cookies = app.browser.cookie_header("/user/alice/api").unwrap();
    let xsrf = cookie_value(&cookies, "_xsrf").expect("Jupyter's XSRF cookie came through");

    // Jupyter's XSRF check is still on: no token header, no kernel.
    let refused = app
        .client
        .post(app.url("/user/alice/api/kernels"))
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A kernel over the REST API, `1+1` over its WebSocket.
    let started = app
        .client
        .post(app.url("/user/alice/api/kernels"))
        .header("X-XSRFToken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    let kernel: Value = started.json().await.unwrap();
    let channels = format!(
        "/user/alice/api/kernels/{}/channels",
        kernel["id"].as_str().unwrap()
    );
    let mut ws = websocket(&app.browser, &channels, &origin, "alice")
        .await
        .expect("the kernel WebSocket opens");
    let vm = app.store().list_vms(false).await.unwrap()[0].id;
    let opened = app
        .provisioner()
        .activity()
        .last(vm)
        .expect("the upgrade counted");
    assert_eq!(execute(&mut ws, "1+1").await, "2");
    let after = app.provisioner().activity().last(vm).unwrap();
    assert!(
        after > opened,
        "frames count as activity: {opened} then {after}"
    );

    // A WebSocket from a page of another site is refused before Jupyter.
    let foreign = websocket(&app.browser, &channels, "http://evil.example", "evil").await;
    assert_eq!(foreign.err().as_ref().and_then(status_of), Some(403));

    // 50 MB up (Jupyter's contents API takes base64 in JSON) and down.
    let mut data = vec![0u8; 50 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut data);
    // Made by hand: serde_json takes long over 67 MB in a debug build.
    let upload = format!(
        r#"{{"type": "file", "format": "base64", "content": "{}"}}"#,
        base64::engine::general_purpose::STANDARD.encode(&data)
    );
    let uploaded = app
        .client
        .put(app.url("/user/alice/api/contents/big.bin"))
        .header("X-XSRFToken", &xsrf)
        .header("content-type", "application/json")
        .body(upload)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert!(
        uploaded.status().is_success(),
        "{:?}",
        uploaded.text().await
    );
    let on_disk = std::fs::read(jupyter.root().join("big.bin")).unwrap();
    assert!(on_disk == data, "stored intact");
    let downloaded = app
        .client
        .get(app.url("/user/alice/files/big.bin"))
        // As a browser following a link of Jupyter's page: Jupyter refuses
        // file downloads without a referer from its own host.
        .header("referer", app.url("/user/alice/lab/tree"))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK, "{}", jupyter.log());
    let body = downloaded.bytes().await.unwrap();
    assert_eq!(body.len(), data.len());
    assert!(body == data, "downloaded intact");

    // Hop-by-hop headers stop at the proxy.
    let hop_by_hop = app
        .client
        .get(app.url("/user/alice/api/status"))
        .header("connection", "keep-alive, x-only-this-hop")
        .header("x-only-this-hop", "1")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        hop_by_hop.status(),
        StatusCode::OK,
        "{:?}",
        hop_by_hop.text().await
    );

    // Another logged-in user gets the same 404 as for nobody, everywhere.
    let bob = app.new_browser();
    bob.login_registered("bob").await;
    for path in [
        "/user/alice/lab",
        "/user/alice/lab/tree",
        "/user/alice/api/kernels",
        &format!("/user/alice/api/kernels/{}", kernel["id"].as_str().unwrap()),
        "/user/alice/files/big.bin",
        "/user/bob/lab",
    ] {
        let response = bob
            .client
            .get(bob.url(path))
            .header("x-test-who", "bob")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let post = bob
        .client
        .post(bob.url("/user/alice/api/kernels"))
        .header("x-test-who", "bob")
        .header("X-XSRFToken", &xsrf)
        .header("cookie", format!("_xsrf={xsrf}"))
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    let bobs_ws = websocket(&bob, &channels, &origin, "bob").await;
    assert_eq!(bobs_ws.err().as_ref().and_then(status_of), Some(404));
    // Not logged in: pages go through login and come back, the rest is 404.
    let anonymous = app.new_browser();
    let to_login = anonymous.get("/user/alice/lab?x=1").await;
    crate::helpers::assert_is_redirect_to(&to_login, "/login?next=%2Fuser%2Falice%2Flab%3Fx%3D1");
    let anonymous_ws = websocket(&anonymous, &channels, &origin, "anonymous").await;
    assert_eq!(anonymous_ws.err().as_ref().and_then(status_of), Some(404));

    // What reached Jupyter: nothing of theirs; Jupyter's cookies, never
    // stackbinder's; who asked; no hop-by-hop header.
    let heads = hop.heads();
    for who in ["bob", "anonymous", "evil"] {
        let marker = format!("\r\nx-test-who: {who}");
        assert!(
            !heads.iter().any(|h| h.contains(&marker)),
            "{who} reached Jupyter"
        );
    }
    assert!(heads.iter().any(|h| h.contains("\r\nx-test-who: alice")));
    // The provisioner's own probes reach Jupyter directly, without these.
    let heads: Vec<&String> = heads
        .iter()
        .filter(|h| h.contains("\r\nx-forwarded-proto: http"))
        .collect();
    assert!(heads.len() >= 8, "only {} proxied requests", heads.len());
    let session = stackbinder::web::SESSION_COOKIE;
    assert!(
        app.session_cookie().is_some(),
        "the browser holds our session cookie"
    );
    assert!(
        !hop.sent().contains(session),
        "stackbinder's session cookie reached Jupyter"
    );
    assert!(
        heads
            .iter()
            .any(|h| h.contains("\r\ncookie: ") && h.contains("_xsrf="))
    );
    assert!(
        heads
            .iter()
            .all(|h| h.contains("\r\nx-forwarded-for: 127.0.0.1"))
    );
    assert!(
        heads
            .iter()
            .all(|h| h.contains("\r\nx-forwarded-proto: http"))
    );
    assert!(heads.iter().all(|h| !h.contains("x-only-this-hop")));
    assert!(heads.iter().all(|h| !h.contains("proxy-authorization")));
    assert!(
        heads.iter().any(|h| h.contains("upgrade: websocket")),
        "the WebSocket handshake went through"
    );
}
