//! `/register/{secret}`: a registration link puts its visitor on the
//! allowlist. GET shows the invitation (logging in first if needed); the
//! POST (with CSRF) registers, so a link prefetched by a mail scanner
//! registers nobody. Secrets are compared in constant time, a wrong one is
//! a plain 404, and a client that keeps guessing is locked out.

use super::client_ip::ClientIp;
use super::guard::{Guesser, Lockout};
use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, Visitor};
use super::{AppState, WebError};
use crate::access::{Action, OpenedLink};
use crate::secret;
use crate::store::{LinkState, User};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use secrecy::ExposeSecret;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new().route("/register/{secret}", get(invitation).post(register))
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    label: String,
    registered: bool,
    just_registered: bool,
    default_repo: String,
    launch_base: String,
}

pub(super) fn launch_base(state: &AppState) -> String {
    state
        .config
        .server
        .public_url
        .join("VM_start")
        .expect("a relative path joins")
        .to_string()
}

/// Find the active link `presented` opens. Every candidate is compared
/// in constant time; a wrong guess counts against the visitor's session
/// and address (see `guard.rs`).
async fn resolve(
    state: &AppState,
    visitor: &Visitor,
    ip: ClientIp,
    presented: &str,
) -> Result<OpenedLink, WebError> {
    let session = visitor.session.id().map(|id| id.to_string());
    let guesser = Guesser {
        address: ip.0,
        session: session.as_deref(),
    };
    if let Some(retry_after) = state.guesses.locked_for(guesser) {
        // Only a locked address is held back: a locked session may share
        // its address with a whole class.
        if let Some(wait) = state.guesses.address_locked_for(ip.0) {
            state.tarpit.hold(ip.0, Duration::from_secs(wait)).await;
        }
        return Err(WebError::TooManyRequests { retry_after });
    }
    if let Some(configured) = &state.registration_secret
        && secret::equal(configured.expose_secret().as_bytes(), presented.as_bytes())
    {
        return Ok(OpenedLink::Configured);
    }
    let hash = secret::hash(presented);
    let now = Utc::now();
    let found = state
        .store
        .list_links()
        .await?
        .into_iter()
        .find(|link| secret::equal(&link.secret_hash, &hash));
    match found.map(|link| (link.state(now), link)) {
        Some((LinkState::Active, link)) => Ok(OpenedLink::Stored {
            id: link.id,
            label: link.label,
        }),
        Some((LinkState::Expired, _)) => Err(WebError::LinkInactive("has expired")),
        Some((LinkState::UsedUp, _)) => {
            Err(WebError::LinkInactive("has been used as often as it may"))
        }
        // A revoked link is as good as a wrong one.
        Some((LinkState::Revoked, _)) | None => {
            match state.guesses.wrong_guess(guesser) {
                Some(Lockout::Session) => tracing::warn!(
                    client = %ip.0,
                    "too many wrong registration secrets from one session; session locked out"
                ),
                Some(Lockout::Address) => tracing::warn!(
                    client = %ip.0,
                    "too many wrong registration secrets from one address; address locked out"
                ),
                None => {}
            }
            Err(WebError::NotFound)
        }
    }
}

/// Who the link is for: the logged-in visitor (a logged-out one goes through
/// the login and comes back here), unless they are blocked or their access
/// was revoked (which only an admin undoes).
fn invitee<'v>(
    state: &AppState,
    visitor: &'v Visitor,
    presented: &str,
) -> Result<&'v User, WebError> {
    let Some(user) = &visitor.user else {
        return Err(WebError::LoginRequired {
            next: format!("/register/{presented}"),
        });
    };
    state.access.check(user, Action::Register)?;
    Ok(user)
}

async fn invitation(
    State(state): State<AppState>,
    visitor: Visitor,
    ip: ClientIp,
    Path(presented): Path<String>,
) -> Result<Response, WebError> {
    let link = resolve(&state, &visitor, ip, &presented).await?;
    let user = invitee(&state, &visitor, &presented)?;
    Ok(render(RegisterPage {
        layout: visitor.layout(&state, "Register"),
        label: link.label().to_owned(),
        registered: user.is_registered(),
        just_registered: false,
        default_repo: state.config.launch.default_repo.to_string(),
        launch_base: launch_base(&state),
    })?
    .into_response())
}

async fn register(
    State(state): State<AppState>,
    visitor: Visitor,
    ip: ClientIp,
    Path(presented): Path<String>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let link = resolve(&state, &visitor, ip, &presented).await?;
    let user = invitee(&state, &visitor, &presented)?;
    let newly = state.access.register(user, &link).await?;
    Ok(render(RegisterPage {
        layout: visitor.layout(&state, "Registered"),
        label: link.label().to_owned(),
        registered: true,
        just_registered: newly,
        default_repo: state.config.launch.default_repo.to_string(),
        launch_base: launch_base(&state),
    })?
    .into_response())
}
