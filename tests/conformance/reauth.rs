//! A token revoked in Keystone (`openstack token revoke`, what an operator
//! does after a leak) does not stop stackbinder: the next call is refused
//! with 401, stackbinder authenticates again once, and the call succeeds.
//!
//! stackbinder reaches Keystone through a tap here: a pass-through proxy
//! on 127.0.0.1 that records each token Keystone issues, so the test can
//! revoke the very token stackbinder holds and count its authentications.
//! The service endpoints in the catalog are the real ones.

use crate::dev::{self, Rest};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stackbinder::cloud::Cloud;
use stackbinder::cloud::openstack::{Credentials, OpenStackCloud, Tuning};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Tap {
    keystone: String,
    http: reqwest::Client,
    /// The tokens Keystone issued through the tap (`POST /v3/auth/tokens`).
    issued: Arc<Mutex<Vec<String>>>,
}

/// Start the tap in front of `keystone` (scheme, host and port).
async fn start_tap(keystone: String) -> (String, Tap) {
    let tap = Tap {
        keystone,
        http: reqwest::Client::new(),
        issued: Arc::default(),
    };
    let router = axum::Router::new()
        .fallback(pass_through)
        .with_state(tap.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{address}"), tap)
}

async fn pass_through(
    State(tap): State<Tap>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = tap
        .http
        .request(method.clone(), format!("{}{path}", tap.keystone))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.expect("Keystone answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out.insert(name.clone(), value.clone());
        }
    }
    if method == Method::POST
        && uri.path().ends_with("/auth/tokens")
        && status.is_success()
        && let Some(token) = answer.headers().get("x-subject-token")
    {
        tap.issued
            .lock()
            .unwrap()
            .push(token.to_str().unwrap().to_owned());
    }
    let body = answer.bytes().await.expect("Keystone's body");
    (status, out, body).into_response()
}

/// A copy of the dev clouds.yaml whose stackbinder entry authenticates
/// through the tap; returns the file and the tap.
async fn clouds_yaml_through_tap(dir: &std::path::Path) -> (std::path::PathBuf, Tap) {
    let text = std::fs::read_to_string(dev::clouds_yaml()).unwrap();
    let mut yaml: Value = serde_yaml_ng::from_str(&text).unwrap();
    let auth_url = yaml["clouds"][dev::CLOUD]["auth"]["auth_url"]
        .as_str()
        .expect("the entry has an auth_url")
        .to_owned();
    let parsed = url::Url::parse(&auth_url).unwrap();
    let origin = parsed.origin().ascii_serialization();
    let (tap_url, tap) = start_tap(origin.clone()).await;
    yaml["clouds"][dev::CLOUD]["auth"]["auth_url"] =
        Value::String(auth_url.replace(&origin, &tap_url));
    let path = dir.join("clouds.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&yaml).unwrap()).unwrap();
    (path, tap)
}

#[tokio::test]
#[ignore = "needs the dev cloud: scripts/openstack-dev.sh up (see README, Development)"]
async fn conformance_a_revoked_token_is_replaced_with_exactly_one_new_authentication() {
    let _one = dev::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let (clouds_yaml, tap) = clouds_yaml_through_tap(dir.path()).await;
    let cloud = OpenStackCloud::new(
        &dev::cloud_config(),
        Credentials::File {
            path: clouds_yaml,
            cloud: dev::CLOUD.into(),
        },
        Tuning::default(),
    );

    // stackbinder authenticates and calls Nova.
    assert!(
        cloud
            .get_server("00000000-0000-0000-0000-000000000000")
            .await
            .expect("a first call")
            .is_none()
    );
    let token = {
        let issued = tap.issued.lock().unwrap();
        assert_eq!(issued.len(), 1, "one token so far");
        issued[0].clone()
    };

    // The admin revokes that token.
    let admin = Rest::connect(dev::ADMIN_CLOUD).await;
    let revoked = admin.revoke_token(&token).await;
    assert_eq!(revoked, 204, "Keystone revokes the token");
    // Glance (which has not seen the token yet, so holds it in no cache)
    // refuses it now. Nova's token cache may accept it a while longer, so
    // the call below goes to Glance.
    let image = admin.endpoint("image");
    let status = reqwest::Client::new()
        .get(format!("{image}/v2/images"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "the revoked token is refused");

    // The next stackbinder call succeeds, with one new authentication.
    let missing = cloud
        .get_image("00000000-0000-0000-0000-000000000000")
        .await
        .expect("the call succeeds after authenticating again");
    assert!(missing.is_none());
    assert_eq!(tap.issued.lock().unwrap().len(), 2, "exactly one new token");
    cloud
        .get_image("00000000-0000-0000-0000-000000000000")
        .await
        .expect("and the next call too");
    assert_eq!(tap.issued.lock().unwrap().len(), 2, "with the same token");
}
