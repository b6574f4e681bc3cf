//! What changes in the headers on the way through: hop-by-hop headers go
//! (RFC 9110, section 7.6.1), stackbinder's cookies go, `X-Forwarded-*`
//! come in, and a redirect to the VM's own address comes back to ours.
//! Pure: no I/O.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use url::Url;

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1,
/// plus the `Proxy-*` and `Keep-Alive` of older practice).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Remove the hop-by-hop headers: the fixed ones, any `Proxy-*`, and every
/// header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Drop the cookies called `names` from the `Cookie` headers and keep the
/// others (Jupyter's own login cookie and XSRF cookie must get through).
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default().trim();
            !names.contains(&name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Drop any `Set-Cookie` of the upstream that would set one of our cookies.
pub fn strip_set_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|v| v.split('=').next())
                .map(str::trim);
            !name.is_some_and(|n| names.contains(&n))
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Who asked, as the VM should learn it.
pub struct Forwarded<'a> {
    pub client: Option<IpAddr>,
    /// Keep the client's `X-Forwarded-For` and append to it (behind a
    /// trusted reverse proxy); otherwise it is replaced, as a client could
    /// forge it.
    pub trust_incoming: bool,
    /// `http` or `https`: the scheme of `server.public_url`, which is what
    /// the browser used even when a TLS proxy stands in front of us.
    pub proto: &'a str,
    /// The host the browser asked for.
    pub host: Option<&'a HeaderValue>,
}

pub fn set_forwarded(headers: &mut HeaderMap, forwarded: &Forwarded<'_>) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    let earlier: Vec<String> = if forwarded.trust_incoming {
        headers
            .get_all(&XFF)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let chain = earlier
        .into_iter()
        .chain(forwarded.client.map(|ip| ip.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    headers.remove(&XFF);
    if !chain.is_empty()
        && let Ok(value) = HeaderValue::from_str(&chain)
    {
        headers.insert(XFF, value);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_str(forwarded.proto).unwrap_or(HeaderValue::from_static("http")),
    );
    headers.remove("x-forwarded-host");
    if let Some(host) = forwarded.host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
}

/// A `Location` that points at the VM's own address is pointed at our
/// origin instead (the browser cannot reach the VM); relative ones and
/// those to anywhere else pass unchanged.
pub fn rewrite_location(location: &str, upstream: SocketAddr, origin: &Url) -> Option<String> {
    let url = Url::parse(location).ok()?;
    let host_is_vm = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip) == upstream.ip(),
        url::Host::Ipv6(ip) => IpAddr::V6(ip) == upstream.ip(),
        url::Host::Domain(_) => false,
    };
    if !host_is_vm || url.port_or_known_default() != Some(upstream.port()) {
        return None;
    }
    let mut ours = origin.clone();
    ours.set_path(url.path());
    ours.set_query(url.query());
    ours.set_fragment(url.fragment());
    Some(ours.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("trailer", "Expires"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("accept", "text/html"),
            ("authorization", "token abc"),
        ]);
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept", "authorization"]);
    }

    #[test]
    fn only_stackbinders_cookies_are_dropped() {
        let mut headers = map(&[
            ("cookie", "stackbinder_session=s3cret; _xsrf=2|abc"),
            (
                "cookie",
                "username-example-org=\"2|jupyter\"; stackbinder_user=u",
            ),
        ]);
        strip_cookies(&mut headers, &["stackbinder_session", "stackbinder_user"]);
        assert_eq!(
            headers.get_all("cookie").iter().collect::<Vec<_>>(),
            ["_xsrf=2|abc; username-example-org=\"2|jupyter\""]
        );
        let mut only_ours = map(&[("cookie", "stackbinder_session=s3cret")]);
        strip_cookies(&mut only_ours, &["stackbinder_session"]);
        assert!(only_ours.get("cookie").is_none());
    }

    #[test]
    fn the_vm_cannot_set_our_cookies() {
        let mut headers = map(&[
            ("set-cookie", "stackbinder_session=evil; Path=/"),
            ("set-cookie", "_xsrf=2|abc; Path=/user/alice/"),
        ]);
        strip_set_cookies(&mut headers, &["stackbinder_session"]);
        assert_eq!(
            headers.get_all("set-cookie").iter().collect::<Vec<_>>(),
            ["_xsrf=2|abc; Path=/user/alice/"]
        );
    }

    #[test]
    fn forwarded_headers_say_who_asked() {
        let host = HeaderValue::from_static("binder.example.org");
        let mut headers = map(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-host", "evil")]);
        let mut forwarded = Forwarded {
            client: Some("192.0.2.7".parse().unwrap()),
            trust_incoming: false,
            proto: "https",
            host: Some(&host),
        };
        set_forwarded(&mut headers, &forwarded);
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "binder.example.org");

        let mut behind_proxy = map(&[("x-forwarded-for", "203.0.113.9")]);
        forwarded.trust_incoming = true;
        set_forwarded(&mut behind_proxy, &forwarded);
        assert_eq!(behind_proxy["x-forwarded-for"], "203.0.113.9, 192.0.2.7");
    }

    #[test]
    fn redirects_to_the_vm_come_back_to_our_origin() {
        let vm: SocketAddr = "10.0.0.5:8888".parse().unwrap();
        let origin = Url::parse("https://binder.example.org/").unwrap();
        assert_eq!(
            rewrite_location("http://10.0.0.5:8888/user/alice/lab?x=1#y", vm, &origin).as_deref(),
            Some("https://binder.example.org/user/alice/lab?x=1#y")
        );
        for passes in [
            "/user/alice/lab",
            "lab",
            "https://github.com/login",
            "http://10.0.0.5:9999/other",
            "http://10.0.0.6:8888/user/alice/",
        ] {
            assert_eq!(rewrite_location(passes, vm, &origin), None, "{passes}");
        }
    }
}
