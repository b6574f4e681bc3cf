//! GitHub as an identity provider: the OAuth authorization-code flow with
//! `state` and PKCE, then `GET /user` for the login and the numeric id.
//! Endpoints come from the configuration (GitHub Enterprise, tests).

use crate::config::GithubConfig;
use crate::domain::{GithubId, Login};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub did not accept the login code (it may have expired or been used already)")]
    CodeRejected,
    #[error("GitHub did not accept our access token")]
    TokenRejected,
    #[error("GitHub is not answering properly right now ({0})")]
    Unavailable(String),
}

/// Who GitHub says the user is.
#[derive(Debug, Clone)]
pub struct GithubIdentity {
    pub id: GithubId,
    pub login: Login,
}

/// What the browser needs to go to GitHub, and what we keep to check the
/// way back.
pub struct AuthorizeRedirect {
    pub url: Url,
    pub state: String,
    pub pkce_verifier: String,
}

#[derive(Clone)]
pub struct Github {
    oauth: Client,
    api_url: Url,
    http: reqwest::Client,
}

impl Github {
    pub fn new(
        config: &GithubConfig,
        client_secret: Option<&SecretString>,
        public_url: &Url,
    ) -> Self {
        let mut oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(
                public_url
                    .join("login/callback")
                    .expect("a relative path joins"),
            ));
        if let Some(secret) = client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        let http = reqwest::Client::builder()
            // No redirects: the token endpoint must answer itself (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("stackbinder/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            oauth,
            api_url: config.api_url.clone(),
            http,
        }
    }

    /// Where to send the browser. No scopes: identity only.
    pub fn authorize(&self) -> AuthorizeRedirect {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .url();
        AuthorizeRedirect {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Trade the code for a token, then ask GitHub who it belongs to.
    pub async fn identify(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<GithubIdentity, GithubError> {
        let token = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                // GitHub answers a bad code with 200 and an `error` field,
                // which does not parse as a token.
                RequestTokenError::ServerResponse(_) | RequestTokenError::Parse(..) => {
                    GithubError::CodeRejected
                }
                other => GithubError::Unavailable(other.to_string()),
            })?;
        #[derive(Deserialize)]
        struct UserJson {
            id: i64,
            login: String,
        }
        let url = self
            .api_url
            .join("user")
            .map_err(|e| GithubError::Unavailable(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(token.access_token().secret())
            .header("Accept", "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| GithubError::Unavailable(e.without_url().to_string()))?;
        match response.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::UNAUTHORIZED => return Err(GithubError::TokenRejected),
            s => return Err(GithubError::Unavailable(format!("GET /user answered {s}"))),
        }
        let user: UserJson = response
            .json()
            .await
            .map_err(|e| GithubError::Unavailable(format!("unexpected /user answer: {e}")))?;
        let login = Login::parse(&user.login).map_err(GithubError::Unavailable)?;
        Ok(GithubIdentity {
            id: GithubId(user.id),
            login,
        })
    }
}
