//! Plain HTTP through to the VM, bodies streamed both ways.
//!
//! The upstream client is hyper-util's pooled client on hyper: the same
//! HTTP stack axum serves us with, so a request body is handed over as the
//! stream it is (a 50 MB upload is never in memory), the response body
//! comes back the same way (downloads, Server-Sent Events), and keep-alive
//! connections to each VM are reused. It also carries the WebSocket
//! upgrade (see `websocket`). reqwest would buffer nothing either, but it
//! wraps the same client with redirect and decompression policies a proxy
//! must not have.

use super::headers::{self, Forwarded};
use super::{Hop, ProxyError};
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri, Version, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// How long to wait for the VM to accept a connection. Nothing else has a
/// timeout: a download, an event stream or a kernel may run for hours.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub type Client = HyperClient<HttpConnector, Body>;

pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Turn the browser's request into the VM's: same method, path, query and
/// body; hop-by-hop headers and our cookies out, `X-Forwarded-*` in. The
/// `Host` stays the browser's: Jupyter compares it with `Origin`.
pub fn upstream_request(request: Request<Body>, hop: &Hop) -> Result<Request<Body>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::strip_cookies(&mut parts.headers, super::OUR_COOKIES);
    // Our side already answered any `Expect: 100-continue`.
    parts.headers.remove(header::EXPECT);
    headers::set_forwarded(
        &mut parts.headers,
        &Forwarded {
            client: hop.client_ip,
            trust_incoming: hop.trust_forwarded_for,
            proto: hop.origin.scheme(),
            host: host.as_ref(),
        },
    );
    if let Some(host) = host {
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = Uri::try_from(format!("http://{}{path}", hop.upstream.addr))
        .map_err(|_| ProxyError::Ambiguous)?;
    parts.version = Version::HTTP_11;
    // What the router and the session layer put there is ours alone.
    parts.extensions = axum::http::Extensions::new();
    Ok(Request::from_parts(parts, body))
}

/// The VM's answer for the browser: hop-by-hop headers out, no cookie of
/// ours set by the VM, a redirect to the VM's address onto our origin.
pub fn downstream_response<B>(response: Response<B>, hop: &Hop) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::strip_set_cookies(&mut parts.headers, super::OUR_COOKIES);
    let rewritten = parts
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| headers::rewrite_location(l, hop.upstream.addr, &hop.origin))
        .and_then(|l| HeaderValue::from_str(&l).ok());
    if let Some(location) = rewritten {
        parts.headers.insert(header::LOCATION, location);
    }
    Response::from_parts(parts, Body::new(body))
}

/// Send `request` to the VM and stream its answer back.
pub async fn http(request: Request<Body>, hop: &Hop) -> Result<Response<Body>, ProxyError> {
    let request = upstream_request(request, hop)?;
    let response = hop
        .client
        .request(request)
        .await
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    Ok(downstream_response(response, hop))
}
