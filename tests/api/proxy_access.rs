//! The proxy's gate, with VMs that record what reaches them: hostile
//! request targets and headers, VMs that are not ready, logins that do not
//! exist, activity for idle culling, and per-user origins.

use crate::helpers::{REPO, TestApp, TestOptions, on_test_pool, spawn_app, spawn_app_with};
use axum::extract::Request;
use chrono::{Duration as ChronoDuration, Utc};
use reqwest::StatusCode;
use stackbinder::cloud::simulated::Scenario;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A VM's Jupyter that answers every request with 200 and records the
/// requests the proxy forwarded (those with `X-Forwarded-For`; the
/// provisioner's own probes come without).
#[derive(Clone)]
struct RecordingVm {
    addr: SocketAddrV4,
    proxied: Arc<Mutex<Vec<String>>>,
}

impl RecordingVm {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to IPv4")
        };
        let proxied = Arc::new(Mutex::new(Vec::new()));
        let record = proxied.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let record = record.clone();
            async move {
                if request.headers().contains_key("x-forwarded-for") {
                    record
                        .lock()
                        .unwrap()
                        .push(format!("{} {}", request.method(), request.uri()));
                }
                axum::Json(serde_json::json!({"version": "2.14.0 (recording)"}))
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, proxied }
    }

    fn proxied(&self) -> Vec<String> {
        self.proxied.lock().unwrap().clone()
    }
}

/// Log `login` in on a new browser of `app` and make their VM ready on
/// `vm`. Returns the browser's session cookie.
async fn ready_on(
    app: &TestApp,
    login: &str,
    vm: &RecordingVm,
) -> (crate::helpers::Browser, String) {
    let browser = app.new_browser();
    browser.login_registered(login).await;
    app.cloud.push_scenario(Scenario::ExternalJupyter(vm.addr));
    browser.launch(REPO, "", "").await;
    app.wait_for_state_of(&browser, "ready").await;
    let cookie = browser.session_cookie().expect("logged in");
    (browser, cookie)
}

/// Send `head` (and nothing else) on a new connection; the status line of
/// the answer, or "closed" when the server hung up without one.
async fn raw(app: &TestApp, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let read = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
        answer
    };
    // The server may answer and hang up before it has read everything.
    let write = async {
        for chunk in head.chunks(64 * 1024) {
            if writer.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let (answer, ()) = tokio::join!(read, write);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer
        .lines()
        .next()
        .filter(|l| !l.is_empty())
        .unwrap_or("closed")
        .to_owned()
}

#[tokio::test]
async fn hostile_requests_get_a_clean_4xx_and_never_reach_another_vm() {
    let app = spawn_app().await;
    let (alices, bobs) = (RecordingVm::start().await, RecordingVm::start().await);
    let (_alice, alice_cookie) = ready_on(&app, "alice", &alices).await;
    let (_bob, _) = ready_on(&app, "bob", &bobs).await;
    // Carol's VM says ready but never answers: it is not ready.
    let carol = app.new_browser();
    carol.login_registered("carol").await;
    app.cloud.push_scenario(Scenario::JupyterNeverAnswers);
    carol.launch(REPO, "", "").await;
    app.wait_for_view(&carol, "carol's VM booted", |v| v["state"] == "building")
        .await;
    let carol_cookie = carol.session_cookie().unwrap();

    let host = format!("Host: {}\r\n", app.address);
    let get = |target: &str, cookie: &str, extra: &str| {
        format!(
            "GET {target} HTTP/1.1\r\n{host}Cookie: {cookie}\r\n{extra}Connection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let bobs_address = format!("http://{}/user/bob/api", bobs.addr);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dot segments",
            get("/user/alice/../bob/api", &alice_cookie, ""),
            "400",
        ),
        (
            "encoded dot segments",
            get("/user/alice/%2e%2e/bob/api", &alice_cookie, ""),
            "400",
        ),
        (
            "an encoded slash in the path",
            get("/user/alice/files/..%2F..%2Fbob", &alice_cookie, ""),
            "400",
        ),
        (
            "an encoded slash in the login",
            get("/user/alice%2F..%2Fbob/api", &alice_cookie, ""),
            "404",
        ),
        (
            "another user's server",
            get("/user/bob/api", &alice_cookie, ""),
            "404",
        ),
        (
            "an absolute URL to another VM",
            get(&bobs_address, &alice_cookie, ""),
            "404",
        ),
        (
            "an absolute URL to another user",
            get(
                &format!("http://{}/user/bob/api", app.address),
                &alice_cookie,
                "",
            ),
            "404",
        ),
        (
            "a login that does not exist",
            get("/user/nosuchuser/api", &alice_cookie, ""),
            "404",
        ),
        (
            "a WebSocket for a login that does not exist",
            get(
                "/user/nosuchuser/api/kernels/k/channels",
                &alice_cookie,
                upgrade,
            ),
            "404",
        ),
        (
            "a VM that is not ready",
            get("/user/carol/api", &carol_cookie, ""),
            "404",
        ),
        (
            "a WebSocket to a VM that is not ready",
            get("/user/carol/api/kernels/k/channels", &carol_cookie, upgrade),
            "404",
        ),
        (
            "a CR inside a header",
            get(
                "/user/alice/api",
                &alice_cookie,
                "X-Evil: a\rX-Injected: b\r\n",
            ),
            "400",
        ),
        (
            "a folded header line",
            get(
                "/user/alice/api",
                &alice_cookie,
                "X-Evil: a\r\n X-Injected: b\r\n",
            ),
            "400",
        ),
    ];
    for (what, request, status) in &cases {
        let answer = raw(&app, request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
    }
    // A 100 MB header: refused long before its end (431, or a hang-up).
    let mut huge =
        format!("GET /user/alice/api HTTP/1.1\r\n{host}Cookie: {alice_cookie}\r\nX-Huge: ")
            .into_bytes();
    huge.resize(huge.len() + 100 * 1024 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw(&app, &huge).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer == "closed",
        "{answer}"
    );

    assert_eq!(
        bobs.proxied(),
        Vec::<String>::new(),
        "nothing reached bob's VM"
    );
    assert_eq!(
        alices.proxied(),
        Vec::<String>::new(),
        "nothing hostile reached alice's VM"
    );
    // The same connection works for a plain request of alice's: the gate
    // is not closed for everyone.
    let fine = raw(&app, &get("/user/alice/api/status", &alice_cookie, "")).await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    assert_eq!(alices.proxied(), ["GET /user/alice/api/status"]);
}

#[tokio::test]
async fn proxied_requests_keep_a_vm_from_idle_culling_across_a_restart() {
    let mut app = spawn_app_with(TestOptions {
        drive_in_background: false,
        configure: |c| {
            c.launch.idle_timeout_minutes = 30;
            c.provision.idle_check_seconds = 0;
        },
        ..TestOptions::default()
    })
    .await;
    app.login_registered("ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let token = app.launch_data(0).await.jupyter_token;
    // Jupyter says 45 minutes idle (its /api/status does not count as use).
    app.cloud
        .set_jupyter_last_activity(Utc::now() - ChronoDuration::minutes(45));
    let used = app
        .get(&format!("/user/ada/api/status?token={token}"))
        .await;
    assert_eq!(used.status(), StatusCode::OK);
    app.step().await;
    let vm = &app.store().list_vms(false).await.unwrap()[0];
    assert_eq!(
        vm.state.as_str(),
        "ready",
        "used through the proxy a moment ago"
    );
    assert_eq!(vm.proxied_at, None, "not flushed yet");

    // Flushed to the store, it survives a restart (a new, empty memory).
    let written = app
        .provisioner()
        .activity()
        .flush(app.store())
        .await
        .unwrap();
    assert_eq!(written, 1);
    let vm = app.store().list_vms(false).await.unwrap()[0].clone();
    let proxied_at = vm.proxied_at.expect("flushed");
    assert!(
        Utc::now() - proxied_at < ChronoDuration::minutes(1),
        "{proxied_at}"
    );
    app.restart().await;
    app.step().await;
    let vm = app.store().vm(vm.id).await.unwrap().unwrap();
    assert_eq!(vm.state.as_str(), "ready");
    assert!(app.api_vm_json().await["idle_warning"].is_null());

    // Long unused through the proxy as well: Jupyter's answer decides. (A
    // restart, as the driver asks each VM at most once a second.)
    let long_ago = Utc::now() - ChronoDuration::minutes(40);
    on_test_pool!(app.store(), |pool| sqlx::query(
        "UPDATE vms SET proxied_at = $1 WHERE id = $2"
    )
    .bind(long_ago)
    .bind(vm.id)
    .execute(pool)
    .await
    .map(|done| done.rows_affected()))
    .unwrap();
    app.restart().await;
    app.step().await;
    let vm = app.store().vm(vm.id).await.unwrap().unwrap();
    assert_eq!(vm.state.as_str(), "deleting", "idle by both accounts");
}

#[tokio::test]
async fn a_user_domain_hands_over_with_a_one_time_ticket() {
    let app = spawn_app_with(TestOptions {
        configure: |c| c.server.user_domain = Some("nb.test".into()),
        ..TestOptions::default()
    })
    .await;
    app.login_registered("Ada").await;
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let token = app.launch_data(0).await.jupyter_token;
    let port = app.address.port();
    let ada_host = format!("ada.nb.test:{port}");
    let plain = crate::helpers::plain_client();
    let on_host = |host: &str, path: &str| {
        plain
            .get(format!("{}{path}", app.base))
            .header("host", host)
    };

    // The main origin never serves Jupyter: it hands over.
    let path = format!("/user/Ada/?token={token}");
    let handover = app.get(&path).await;
    assert_eq!(handover.status(), StatusCode::SEE_OTHER);
    let target = crate::helpers::location(&handover);
    let prefix = format!("http://ada.nb.test:{port}/stackbinder-ticket?ticket=");
    let ticket = target
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{target}"));
    let post = app
        .client
        .post(app.url("/user/Ada/api/contents"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        StatusCode::NOT_FOUND,
        "only page visits hand over"
    );

    // Another user's host does not take the ticket (and burns it).
    let elsewhere = on_host(
        &format!("eve.nb.test:{port}"),
        &format!("/stackbinder-ticket?ticket={ticket}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    let burnt = on_host(&ada_host, &format!("/stackbinder-ticket?ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(burnt.status(), StatusCode::BAD_REQUEST);

    // A fresh ticket, redeemed on ada's host once, for a host-only cookie.
    let target = crate::helpers::location(&app.get(&path).await);
    let ticket = target.strip_prefix(&prefix).unwrap().to_owned();
    let redeemed = on_host(&ada_host, &format!("/stackbinder-ticket?ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(redeemed.status(), StatusCode::SEE_OTHER);
    assert_eq!(crate::helpers::location(&redeemed), path);
    let set_cookie = redeemed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("stackbinder_user="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "host-only: {set_cookie}"
    );
    let user_cookie = set_cookie.split(';').next().unwrap().to_owned();
    let again = on_host(&ada_host, &format!("/stackbinder-ticket?ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a ticket works once"
    );

    // With it, ada's host is ada's Jupyter.
    let jupyter = on_host(&ada_host, &path)
        .header("cookie", &user_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(jupyter.status(), StatusCode::OK);
    assert!(jupyter.text().await.unwrap().contains("Simulated Jupyter"));
    // A WebSocket from the main origin's pages is not one of ada's host.
    let foreign_ws = on_host(&ada_host, "/user/Ada/api/kernels/k/channels")
        .header("cookie", &user_cookie)
        .header("origin", app.base.as_str())
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_ws.status(), StatusCode::FORBIDDEN);

    // Nothing else lives on a user's host, and the cookie opens no other.
    for other in ["/", "/admin", "/VM_status", "/user/eve/"] {
        let response = on_host(&ada_host, other)
            .header("cookie", &user_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{other}");
    }
    let eves_host = on_host(&format!("eve.nb.test:{port}"), "/user/eve/")
        .header("cookie", &user_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        eves_host.status(),
        StatusCode::SEE_OTHER,
        "to the main origin's login"
    );
    assert_eq!(
        crate::helpers::location(&eves_host),
        format!("{}/user/eve/", app.base)
    );
    // Without the cookie, ada's host sends the visitor to the main origin.
    let no_cookie = on_host(&ada_host, &path).send().await.unwrap();
    assert_eq!(no_cookie.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        crate::helpers::location(&no_cookie),
        format!("{}{path}", app.base)
    );
}

/// A VM whose Jupyter streams: `GET …/events` sends what the test pushes,
/// as it comes; `PUT …/upload` says when the first bytes arrived.
struct StreamingVm {
    addr: SocketAddrV4,
    events: tokio::sync::mpsc::Sender<bytes::Bytes>,
    first_upload_bytes: tokio::sync::mpsc::Receiver<usize>,
}

impl StreamingVm {
    async fn start() -> Self {
        use axum::body::Body;
        use axum::routing::{get, put};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to IPv4")
        };
        let (events, events_rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
        let events_rx = Arc::new(tokio::sync::Mutex::new(Some(events_rx)));
        let (first_tx, first_upload_bytes) = tokio::sync::mpsc::channel(1);
        let app = axum::Router::new()
            .route(
                "/user/ada/events",
                get(move || {
                    let events_rx = events_rx.clone();
                    async move {
                        let rx = events_rx.lock().await.take().expect("one event stream");
                        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                            rx.recv()
                                .await
                                .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
                        });
                        (
                            [("content-type", "text/event-stream")],
                            Body::from_stream(stream),
                        )
                    }
                }),
            )
            .route(
                "/user/ada/upload",
                put(move |body: Body| async move {
                    use futures_util::StreamExt;
                    let mut stream = body.into_data_stream();
                    let mut total = 0;
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.unwrap();
                        if total == 0 {
                            first_tx.send(chunk.len()).await.unwrap();
                        }
                        total += chunk.len();
                    }
                    total.to_string()
                }),
            )
            .fallback(|| async {
                axum::Json(serde_json::json!({"version": "2.14.0 (streaming)"}))
            });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            events,
            first_upload_bytes,
        }
    }
}

#[tokio::test]
async fn bodies_stream_through_the_proxy_both_ways() {
    let app = spawn_app().await;
    let mut vm = StreamingVm::start().await;
    app.login_registered("ada").await;
    app.cloud.push_scenario(Scenario::ExternalJupyter(vm.addr));
    app.launch(REPO, "", "").await;
    app.wait_for_state("ready").await;
    let bound = std::time::Duration::from_secs(10);

    // Server-Sent Events: each event arrives while the stream is open.
    let mut events = app.get("/user/ada/events").await;
    assert_eq!(events.status(), StatusCode::OK);
    for event in ["data: one\n\n", "data: two\n\n"] {
        vm.events.send(bytes::Bytes::from(event)).await.unwrap();
        let chunk = tokio::time::timeout(bound, events.chunk())
            .await
            .expect("the event came through before the stream ended")
            .unwrap()
            .unwrap();
        assert_eq!(chunk, event);
    }

    // An upload: the VM has the first bytes before the client sent the rest.
    let (chunks, chunks_rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
        chunks_rx,
        |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
    ));
    let upload = tokio::spawn(
        app.client
            .put(app.url("/user/ada/upload"))
            .body(body)
            .send(),
    );
    chunks
        .send(Ok(bytes::Bytes::from(vec![b'x'; 1000])))
        .await
        .unwrap();
    let first = tokio::time::timeout(bound, vm.first_upload_bytes.recv())
        .await
        .expect("the first bytes reached the VM while the upload went on");
    assert!(first.is_some_and(|n| n > 0 && n <= 1000), "{first:?}");
    chunks
        .send(Ok(bytes::Bytes::from(vec![b'y'; 5000])))
        .await
        .unwrap();
    drop(chunks);
    let answer = upload.await.unwrap().unwrap();
    assert_eq!(answer.text().await.unwrap(), "6000");
}
