//! `[api]`: the REST API under `/api/v1`.

use serde::Deserialize;
use std::num::NonZeroU32;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Requests one token may make per minute (all at once, or spread
    /// out); past that it gets 429 with `Retry-After`.
    pub requests_per_minute: NonZeroU32,
}

impl ApiConfig {
    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "requests_per_minute" => Some("use a positive number, e.g. requests_per_minute = 120"),
            _ => None,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: const { NonZeroU32::new(120).unwrap() },
        }
    }
}
