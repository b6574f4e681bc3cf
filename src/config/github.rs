//! `[github]`: the OAuth app users log in with (GitHub or GitHub
//! Enterprise).

use super::URL_FIX;
use secrecy::SecretString;
use serde::Deserialize;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub api_url: Url,
    /// How long one request to GitHub may take.
    pub timeout_seconds: NonZeroU64,
}

impl GithubConfig {
    /// How long one request to GitHub may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.get())
    }

    /// How to fix a value of `field` that does not parse (or is 0).
    pub(super) fn fix(field: &str) -> Option<&'static str> {
        match field {
            "authorize_url" | "token_url" | "api_url" => Some(URL_FIX),
            "timeout_seconds" => Some("use a positive number of seconds, e.g. 10"),
            _ => None,
        }
    }
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            authorize_url: Url::parse("https://github.com/login/oauth/authorize").expect("valid"),
            token_url: Url::parse("https://github.com/login/oauth/access_token").expect("valid"),
            api_url: Url::parse("https://api.github.com").expect("valid"),
            timeout_seconds: const { NonZeroU64::new(10).unwrap() },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn github_enterprise_urls_and_the_timeout_are_read() {
        let c =
            load_str("[github]\napi_url = \"https://ghe.example.org/api/v3\"\ntimeout_seconds = 3")
                .unwrap();
        assert_eq!(c.github.api_url.as_str(), "https://ghe.example.org/api/v3");
        assert_eq!(c.github.timeout().as_secs(), 3);
        let e = load_str("[github]\ntoken_url = \"not a url\"").unwrap_err();
        assert_eq!(e.key, "github.token_url");
        assert!(e.fix.contains("full URL"), "{e}");
    }
}
