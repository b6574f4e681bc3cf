//! `[server]`: where stackbinder listens, the URLs it is reached at, and
//! how long a login lasts.

use super::{ConfigError, URL_FIX};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port` to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The URL users (and VMs) reach this server at.
    pub public_url: Url,
    /// A session ends after this long without a request.
    pub session_idle_minutes: NonZeroU32,
    /// A session ends this long after login, however busy.
    pub session_max_hours: NonZeroU32,
    /// A message shown on every page (maintenance, course news).
    pub banner: Option<String>,
    /// Behind a reverse proxy: take the client address from the last entry
    /// of `X-Forwarded-For` (rate limits are per client address).
    pub trust_forwarded_for: bool,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// When set, each user's Jupyter is served at `<login>.<user_domain>`
    /// (its own origin) instead of under `public_url`.
    pub user_domain: Option<String>,
    /// The URL the VMs report their progress to; unset: `public_url`. With
    /// the Jupyter proxy the VMs are on a private network, so this can be
    /// the server's address there.
    pub callback_url: Option<Url>,
    /// How long the driver lease lasts: the replica that holds it renews it
    /// every third of this, and a standby takes over at most this long
    /// after the leader stopped renewing.
    pub lease_seconds: NonZeroU32,
}

impl ServerConfig {
    /// Where the VMs send their callbacks.
    pub fn callback_base(&self) -> &Url {
        self.callback_url.as_ref().unwrap_or(&self.public_url)
    }

    /// A session ends after this long without a request.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_idle_minutes.get()) * 60)
    }

    /// How long the driver lease lasts (`lease_seconds`).
    pub fn lease(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_seconds.get()))
    }

    /// A session ends this long after login.
    pub fn session_max(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_max_hours.get()) * 3600)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let public = &self.public_url;
        if !matches!(public.scheme(), "http" | "https") || public.host_str().is_none() {
            return Err(ConfigError::new(
                "server.public_url",
                format!("{public} is not an http(s) URL"),
                "set it to the address users open, e.g. https://binder.example.org",
            ));
        }
        if let Some(domain) = &self.user_domain
            && (!is_domain(domain) || public.host_str() == Some(domain.as_str()))
        {
            return Err(ConfigError::new(
                "server.user_domain",
                format!("{domain:?} is not a domain for the users' hosts"),
                "write the lower-case domain under which <login>.<domain> points at this server \
                 (a wildcard DNS entry and certificate), e.g. \"nb.example.org\", not public_url's host",
            ));
        }
        if let Some(callback) = &self.callback_url
            && (!matches!(callback.scheme(), "http" | "https") || callback.host_str().is_none())
        {
            return Err(ConfigError::new(
                "server.callback_url",
                format!("{callback} is not an http(s) URL"),
                "set it to the address the VMs reach this server at, e.g. http://10.0.0.5:8080, or leave it unset for server.public_url",
            ));
        }
        Ok(())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "bind" => Some("write host:port, e.g. \"127.0.0.1:8080\""),
            "public_url" | "callback_url" => Some(URL_FIX),
            "session_idle_minutes" => Some("use a positive number of minutes, e.g. 480"),
            "session_max_hours" => Some("use a positive number of hours, e.g. 24"),
            "lease_seconds" => Some("use a positive number of seconds, e.g. 15"),
            _ => None,
        }
    }
}

/// Two or more lower-case DNS labels: `<login>.<domain>` must be a host.
fn is_domain(domain: &str) -> bool {
    domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://127.0.0.1:8080").expect("valid URL"),
            session_idle_minutes: const { NonZeroU32::new(8 * 60).unwrap() },
            session_max_hours: const { NonZeroU32::new(24).unwrap() },
            banner: None,
            trust_forwarded_for: false,
            metrics_token: None,
            user_domain: None,
            callback_url: None,
            lease_seconds: const { NonZeroU32::new(15).unwrap() },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn a_user_domain_is_a_lower_case_domain_other_than_the_public_host() {
        let c = load_str("[server]\nuser_domain = \"nb.example.org\"").unwrap();
        assert_eq!(c.server.user_domain.as_deref(), Some("nb.example.org"));
        for bad in [
            "NB.example.org",
            "org",
            "nb..example.org",
            "-nb.example.org",
            "*.nb.example.org",
            "127.0.0.1:8080",
        ] {
            let e = load_str(&format!("[server]\nuser_domain = \"{bad}\"")).unwrap_err();
            assert_eq!(e.key, "server.user_domain", "{bad}");
        }
        let e = load_str(
            "[server]\npublic_url = \"https://binder.example.org\"\nuser_domain = \"binder.example.org\"",
        )
        .unwrap_err();
        assert_eq!(e.key, "server.user_domain");
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_fix() {
        let e = load_str("[server]\nbind = \"nonsense\"").unwrap_err();
        assert_eq!(e.key, "server.bind");
        assert!(e.fix.contains("host:port"), "{e}");
    }

    #[test]
    fn the_callback_url_defaults_to_the_public_url() {
        let c = load_str("[server]\npublic_url = \"https://binder.example.org\"").unwrap();
        assert_eq!(
            c.server.callback_base().as_str(),
            "https://binder.example.org/"
        );
        let c = load_str("[server]\ncallback_url = \"http://10.0.0.5:8080\"").unwrap();
        assert_eq!(c.server.callback_base().as_str(), "http://10.0.0.5:8080/");
        let e = load_str("[server]\ncallback_url = \"ftp://10.0.0.5\"").unwrap_err();
        assert_eq!(e.key, "server.callback_url");
    }

    #[test]
    fn the_lease_is_positive_seconds_fifteen_by_default() {
        let c = load_str("").unwrap();
        assert_eq!(c.server.lease().as_secs(), 15);
        let c = load_str("[server]\nlease_seconds = 30").unwrap();
        assert_eq!(c.server.lease().as_secs(), 30);
        let e = load_str("[server]\nlease_seconds = 0").unwrap_err();
        assert_eq!(e.key, "server.lease_seconds");
        assert!(e.fix.contains("positive number of seconds"), "{e}");
    }

    #[test]
    fn session_lifetimes_are_minutes_and_hours() {
        let c = load_str("[server]\nsession_idle_minutes = 5\nsession_max_hours = 2").unwrap();
        assert_eq!(c.server.session_idle().as_secs(), 5 * 60);
        assert_eq!(c.server.session_max().as_secs(), 2 * 3600);
    }
}
