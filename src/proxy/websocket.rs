//! WebSockets (kernels, terminals, language servers) through to the VM.
//!
//! The handshake goes to Jupyter as an HTTP/1.1 upgrade through the same
//! hyper client as plain requests; when Jupyter answers 101, both sides'
//! connections are taken over with `hyper::upgrade` and spliced together.
//! Frames are not decoded and re-encoded (as axum's `ws` with
//! tokio-tungstenite would do): Jupyter's frames, subprotocols and
//! compression reach the browser exactly as sent, nothing is buffered per
//! message, and the proxy costs a copy of bytes, not a WebSocket
//! implementation. Jupyter itself checks the handshake and the frames.

use super::activity::Stamp;
use super::forward;
use super::{Hop, ProxyError};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use url::Url;

/// A WebSocket handshake: `Connection: upgrade` and `Upgrade: websocket`.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    connection_upgrade && websocket
}

/// A browser always sends `Origin` with a WebSocket handshake, and its
/// cookies go along whatever page opened it: only pages of `origin` may
/// open one (cross-site WebSocket hijacking). A client without `Origin`
/// is not a browser, so it holds its cookies itself.
pub fn origin_allowed(headers: &HeaderMap, origin: &Url) -> bool {
    let Some(sent) = headers.get(header::ORIGIN) else {
        return true;
    };
    let expected = origin.origin().ascii_serialization();
    sent.to_str()
        .is_ok_and(|sent| sent.eq_ignore_ascii_case(&expected))
}

/// Hand the handshake to the VM; on its 101, splice the two connections
/// until either side closes or the server shuts down.
pub async fn forward(mut request: Request<Body>, hop: &Hop) -> Result<Response<Body>, ProxyError> {
    let from_browser = hyper::upgrade::on(&mut request);
    let mut handshake = forward::upstream_request(request, hop)?;
    let upgrade_headers = |headers: &mut HeaderMap| {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    };
    upgrade_headers(handshake.headers_mut());
    let mut response = hop
        .client
        .request(handshake)
        .await
        .map_err(|e| ProxyError::Unreachable(e.to_string()))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Jupyter refused (no token, a kernel that does not exist): its
        // answer goes back as it is.
        return Ok(forward::downstream_response(response, hop));
    }
    let from_vm = hyper::upgrade::on(&mut response);
    let vm = hop.upstream.vm;
    let stamp = hop.stamp.clone();
    let shutdown = hop.shutdown.clone();
    tokio::spawn(async move {
        let (browser, jupyter) = match tokio::try_join!(from_browser, from_vm) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(%vm, error = %e, "a WebSocket upgrade did not complete");
                return;
            }
        };
        let mut browser = Stamped {
            io: TokioIo::new(browser),
            stamp,
        };
        let mut jupyter = TokioIo::new(jupyter);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut browser, &mut jupyter) => {}
            () = shutdown.cancelled() => {}
        }
    });
    let mut answer = forward::downstream_response(response, hop);
    upgrade_headers(answer.headers_mut());
    Ok(answer)
}

/// The browser's side of a WebSocket, stamping the VM's activity on every
/// read and write (a frame or a few at a time).
struct Stamped<T> {
    io: T,
    stamp: Arc<Stamp>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.stamp.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.stamp.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    axum::http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_handshake_is_recognised() {
        assert!(is_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket")
        ])));
        assert!(!is_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_upgrade(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "h2c")
        ])));
    }

    #[test]
    fn only_our_pages_may_open_a_websocket() {
        let ours = Url::parse("https://binder.example.org/").unwrap();
        let ok = |origin: &'static str| origin_allowed(&headers(&[("origin", origin)]), &ours);
        assert!(ok("https://binder.example.org"));
        assert!(!ok("https://evil.example.org"));
        assert!(!ok("http://binder.example.org"));
        assert!(!ok("https://binder.example.org:8443"));
        assert!(!ok("null"));
        assert!(origin_allowed(&HeaderMap::new(), &ours));
    }
}
