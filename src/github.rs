//! GitHub as an identity provider: the OAuth authorization-code flow with
//! `state` and PKCE, then `GET /user` for the login and the numeric id, and
//! organization or team membership when that decides access.
//! Endpoints come from the configuration (GitHub Enterprise, tests).

use crate::config::{GithubConfig, OrgOrTeam};
use crate::domain::{GithubId, Login};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
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

/// Who GitHub says the user is, and the token that says so (kept only
/// while organization membership has to be re-checked).
#[derive(Clone)]
pub struct GithubIdentity {
    pub id: GithubId,
    pub login: Login,
    pub token: SecretString,
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
    /// `read:org` is asked for only when membership decides access.
    wants_orgs: bool,
}

impl Github {
    pub fn new(
        config: &GithubConfig,
        client_secret: Option<&SecretString>,
        public_url: &Url,
        wants_orgs: bool,
    ) -> Self {
        let redirect = public_url
            .join("login/callback")
            .expect("a relative path joins");
        let mut oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(config.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(redirect));
        if let Some(secret) = client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        let http = reqwest::Client::builder()
            // No redirects: the token endpoint must answer itself (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout())
            // GitHub refuses API requests without a User-Agent.
            .user_agent(concat!("stackbinder/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            oauth,
            api_url: config.api_url.clone(),
            http,
            wants_orgs,
        }
    }

    /// Where to send the browser. No scopes (identity only) unless
    /// organization membership decides access.
    pub fn authorize(&self) -> AuthorizeRedirect {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        if self.wants_orgs {
            request = request.add_scope(Scope::new("read:org".into()));
        }
        let (url, state) = request.url();
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
        let token = SecretString::from(token.access_token().secret().clone());
        #[derive(Deserialize)]
        struct UserJson {
            id: i64,
            login: String,
        }
        let response = self.api_get(&token, "user").await?;
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
            token,
        })
    }

    /// Is `login` an active member of one of `allowed`? Asks GitHub each
    /// time, so a removal from the organization counts at once.
    pub async fn is_member(
        &self,
        token: &SecretString,
        login: &Login,
        allowed: &[OrgOrTeam],
    ) -> Result<bool, GithubError> {
        #[derive(Deserialize)]
        struct Membership {
            state: String,
        }
        for entry in allowed {
            let path = match &entry.team {
                None => format!("user/memberships/orgs/{}", entry.org),
                Some(team) => format!("orgs/{}/teams/{team}/memberships/{login}", entry.org),
            };
            let response = self.api_get(token, &path).await?;
            match response.status() {
                s if s.is_success() => {
                    let membership: Membership = response.json().await.map_err(|e| {
                        GithubError::Unavailable(format!("unexpected membership answer: {e}"))
                    })?;
                    if membership.state == "active" {
                        return Ok(true);
                    }
                }
                reqwest::StatusCode::UNAUTHORIZED => return Err(GithubError::TokenRejected),
                // 403/404: not a member (or the membership is hidden from us).
                s if s.is_client_error() => {}
                s => {
                    return Err(GithubError::Unavailable(format!(
                        "GET /{path} answered {s}"
                    )));
                }
            }
        }
        Ok(false)
    }

    async fn api_get(
        &self,
        token: &SecretString,
        path: &str,
    ) -> Result<reqwest::Response, GithubError> {
        let mut url = self.api_url.clone();
        // `api_url` may carry a path prefix (GitHub Enterprise: /api/v3).
        url.path_segments_mut()
            .map_err(|()| GithubError::Unavailable("github.api_url cannot have a path".into()))?
            .pop_if_empty()
            .extend(path.split('/'));
        self.http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    GithubError::Unavailable("no answer in time".into())
                } else {
                    GithubError::Unavailable(e.without_url().to_string())
                }
            })
    }
}
