//! OpenStack's answers, sorted into what stackbinder can act on. Each
//! service wraps its message differently (Nova `{"badRequest": {"message"}}`,
//! Neutron `{"NeutronError": {"type", "message"}}`, Keystone `{"error":
//! {"message"}}`); `ApiError` keeps the status, the message and Neutron's
//! type, and `CloudError` is what leaves this module.

use crate::cloud::CloudError;
use reqwest::StatusCode;
use std::time::Duration;

/// A failed OpenStack API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct ApiError {
    /// What we were doing, in words ("create the server").
    pub what: String,
    pub detail: String,
    pub kind: ApiErrorKind,
    /// The HTTP status, when the cloud answered.
    pub status: Option<StatusCode>,
    /// Neutron's error type (`IpAddressGenerationFailure`, `OverQuota`...).
    pub error_type: Option<String>,
    /// How long a 429/503 asked us to wait.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The cloud answered with an error status.
    Status,
    /// No answer: connection refused, reset, DNS.
    Transport,
    /// No answer in time.
    Timeout,
    /// Keystone refused the credentials, or they are missing.
    Credentials,
    /// The circuit breaker is open: we did not call.
    CircuitOpen,
    /// The answer was not what the API reference says.
    BadAnswer,
}

impl ApiError {
    pub fn new(what: &str, kind: ApiErrorKind, detail: impl Into<String>) -> Self {
        Self {
            what: what.to_owned(),
            detail: detail.into(),
            kind,
            status: None,
            error_type: None,
            retry_after: None,
        }
    }

    /// From an error status and the body the service sent.
    pub fn from_status(
        what: &str,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let (message, error_type) = parse_error_body(body);
        let detail = match message {
            Some(m) => format!("{m} ({})", status.as_u16()),
            None => status.to_string(),
        };
        Self {
            what: what.to_owned(),
            detail,
            kind: ApiErrorKind::Status,
            status: Some(status),
            error_type,
            retry_after,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(StatusCode::NOT_FOUND)
    }

    /// Worth repeating the same request soon: the cloud is busy or failing,
    /// not refusing this request.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ApiErrorKind::Transport | ApiErrorKind::Timeout => true,
            ApiErrorKind::Status => self
                .status
                .is_some_and(|s| s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()),
            _ => false,
        }
    }

    /// Safe to repeat even for a request that creates something: the cloud
    /// told us it did not act on it.
    pub fn was_not_acted_on(&self) -> bool {
        self.status.is_some_and(|s| {
            s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
        })
    }

    /// Counts against the cloud's health (for the circuit breaker).
    pub fn is_outage(&self) -> bool {
        matches!(self.kind, ApiErrorKind::Transport | ApiErrorKind::Timeout)
            || self.status.is_some_and(|s| s.is_server_error())
    }

    pub fn mentions(&self, needle: &str) -> bool {
        self.detail.to_lowercase().contains(&needle.to_lowercase())
    }

    /// Nova, Cinder and Neutron all say "quota" when one is exceeded
    /// (403/413 from Nova and Cinder, 409 `OverQuota` from Neutron).
    pub fn is_quota(&self) -> bool {
        self.error_type.as_deref() == Some("OverQuota")
            || (matches!(self.status.map(|s| s.as_u16()), Some(403 | 409 | 413))
                && self.mentions("quota"))
    }
}

impl From<ApiError> for CloudError {
    fn from(e: ApiError) -> Self {
        if e.is_quota() {
            return CloudError::QuotaExceeded(e.detail);
        }
        match e.kind {
            ApiErrorKind::Transport | ApiErrorKind::Timeout | ApiErrorKind::CircuitOpen => {
                CloudError::Unavailable(e.to_string())
            }
            ApiErrorKind::Status if e.is_retryable() => CloudError::Unavailable(e.to_string()),
            // A 401 that a new token did not cure (the API calls Keystone
            // to check it, and that may be failing): worth trying later.
            ApiErrorKind::Status if e.status == Some(StatusCode::UNAUTHORIZED) => {
                CloudError::Unavailable(e.to_string())
            }
            ApiErrorKind::Credentials => {
                CloudError::Rejected(format!("{e} (check cloud.cloud, clouds.yaml or OS_*)"))
            }
            ApiErrorKind::Status | ApiErrorKind::BadAnswer => CloudError::Rejected(e.to_string()),
        }
    }
}

/// The message (and Neutron's error type) of an OpenStack error body.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return ((!text.is_empty() && text.len() < 500).then_some(text), None);
    };
    if let Some(neutron) = value.get("NeutronError") {
        let message = neutron
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let kind = neutron
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned);
        return (message, kind);
    }
    // Nova/Cinder/Keystone: a single top-level object holding `message`.
    let message = value.as_object().and_then(|o| {
        o.values()
            .find_map(|v| v.get("message").and_then(|m| m.as_str()))
            .or_else(|| o.get("message").and_then(|m| m.as_str()))
            .map(str::to_owned)
    });
    (message, None)
}

/// `Retry-After` in seconds (the form OpenStack services and proxies use).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novas_message_is_found_inside_its_wrapper() {
        let body = br#"{"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}}"#;
        let e = ApiError::from_status("create the server", StatusCode::FORBIDDEN, body, None);
        assert!(e.is_quota());
        assert!(
            matches!(CloudError::from(e), CloudError::QuotaExceeded(m) if m.contains("10 of 10 instances"))
        );
    }

    #[test]
    fn neutrons_type_is_kept() {
        let body = br#"{"NeutronError": {"type": "IpAddressGenerationFailure", "message": "No more IP addresses available on network x.", "detail": ""}}"#;
        let e = ApiError::from_status("allocate", StatusCode::CONFLICT, body, None);
        assert_eq!(e.error_type.as_deref(), Some("IpAddressGenerationFailure"));
        assert!(!e.is_quota());
    }

    #[test]
    fn server_errors_and_429_are_retried_but_404_is_not() {
        let e = |s| ApiError::from_status("x", s, b"", None);
        assert!(e(StatusCode::INTERNAL_SERVER_ERROR).is_retryable());
        assert!(e(StatusCode::TOO_MANY_REQUESTS).is_retryable());
        assert!(!e(StatusCode::NOT_FOUND).is_retryable());
        assert!(!e(StatusCode::CONFLICT).is_retryable());
    }
}
