//! The client's address, for per-client rate limits.

use super::{AppState, WebError};
use crate::config::ServerConfig;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};

pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        if app.config.server.trust_forwarded_for {
            // The proxy appends the address it saw: the last entry is the
            // only one a client cannot forge.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| Self(addr.ip()))
            .ok_or_else(|| WebError::Internal(anyhow::anyhow!("no client address on the request")))
    }
}

/// stackbinder speaks plain HTTP: an https `public_url` means a TLS proxy
/// in front, and without `trust_forwarded_for` every client then has the
/// proxy's address, so the per-address limits lump all users together.
pub fn forwarded_for_warning(server: &ServerConfig) -> Option<&'static str> {
    (server.public_url.scheme() == "https" && !server.trust_forwarded_for).then_some(
        "server.public_url is https, so a TLS proxy is in front, but server.trust_forwarded_for \
         is off: every client has the proxy's address, and the per-address limits (the \
         registration lockout) treat all users as one client. Set server.trust_forwarded_for = \
         true when the proxy sets X-Forwarded-For",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_public_url_without_trusted_forwarding_is_warned_about() {
        let server = |url: &str, trust: bool| ServerConfig {
            public_url: url.parse().unwrap(),
            trust_forwarded_for: trust,
            ..ServerConfig::default()
        };
        assert!(forwarded_for_warning(&server("https://binder.example.org", false)).is_some());
        assert!(forwarded_for_warning(&server("https://binder.example.org", true)).is_none());
        assert!(forwarded_for_warning(&server("http://127.0.0.1:8080", false)).is_none());
    }
}
