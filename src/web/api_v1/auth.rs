//! Who is asking on `/api/v1`: a bearer token and nothing else. Cookies
//! are ignored here, so a page cannot use a visitor's session against
//! the API, and CSRF does not apply (a browser never adds the header).

use super::error::ApiError;
use super::scope::{Scope, Scopes};
use crate::access::Action;
use crate::secret;
use crate::store::User;
use crate::web::AppState;
use crate::web::client_ip::ClientIp;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;

pub struct TokenUser {
    pub user: User,
    pub scopes: Scopes,
}

impl TokenUser {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::MissingScope(scope.name()))
        }
    }
}

impl FromRequestParts<AppState> for TokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated)?
            .to_owned();
        let ClientIp(address) = ClientIp::from_request_parts(parts, state).await?;
        if let Some(wait) = state.api_limit.address_locked_for(address) {
            return Err(ApiError::AddressLocked(wait));
        }
        let hash = secret::hash(&presented);
        let Some(token) = state
            .store
            .token_by_hash(&hash)
            .await?
            .filter(|t| secret::equal(&t.secret_hash, &hash))
        else {
            if state.api_limit.wrong_token(address) {
                tracing::warn!(client = %address, "too many wrong API tokens from one address; address locked out");
            }
            return Err(ApiError::Unauthenticated);
        };
        let now = Utc::now();
        if !token.is_live(now) {
            return Err(ApiError::Unauthenticated);
        }
        state
            .api_limit
            .check(token.id)
            .map_err(ApiError::RateLimited)?;
        let user = state
            .store
            .user(token.github_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        // A token is no more than its owner: blocked or revoked users lose it.
        state
            .access
            .check(&user, Action::Use { org_access: false })
            .map_err(|_| ApiError::Forbidden)?;
        state.store.token_used(token.id, now).await?;
        Ok(Self {
            user,
            scopes: Scopes::parse(&token.scopes),
        })
    }
}

/// A token with `admin:*` whose owner is an admin now (taking someone off
/// `registration.admins` takes their admin tokens' power at once).
pub struct AdminUser(pub TokenUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = TokenUser::from_request_parts(parts, state).await?;
        user.require(Scope::Admin)?;
        state
            .access
            .check(&user.user, Action::Administer { org_access: false })
            .map_err(|_| ApiError::NotAdmin)?;
        Ok(Self(user))
    }
}
