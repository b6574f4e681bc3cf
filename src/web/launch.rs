//! `GET /VM_start` shows what would be launched and asks to confirm;
//! `POST /VM_start` launches. Binder-style `/v2/...` links lead to the same
//! confirmation page, so a mybinder badge works by swapping the host.

use super::layout::{Layout, render};
use super::profile_choice::{self, Offer};
use super::session::{CsrfForm, CsrfProtected, RegisteredUser};
use super::status::VmView;
use super::{AppState, LoginMode, WebError};
use crate::access::AllowedBy;
use crate::domain::{Ide, LaunchParams, LaunchRequest, RepoSpec};
use crate::provision::ProvisionError;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use secrecy::SecretString;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/VM_start", get(confirm).post(launch))
        .route("/v2/gh/{org}/{repo}", get(binder_gh_head))
        .route("/v2/gh/{org}/{repo}/{*git_ref}", get(binder_gh))
        .route("/v2/gl/{project}/{*git_ref}", get(binder_gl))
        .route("/v2/git/{url}/{*git_ref}", get(binder_git))
}

#[derive(Template)]
#[template(path = "launch.html")]
struct ConfirmPage {
    layout: Layout,
    request: Option<LaunchRequest>,
    error: Option<String>,
    params: LaunchParams,
    existing: Option<VmView>,
    share_link: Option<String>,
    /// The launch profiles the user may pick (none: no profiles).
    offers: Vec<Offer>,
    /// The interfaces to pick from; none when the link names a path.
    ides: Vec<IdeOffer>,
}

/// An interface as the launch page offers it.
struct IdeOffer {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The interfaces to offer for `request`: every one, the asked-for one
/// (else JupyterLab) selected, unless the link names a path of its own.
fn ide_offers(request: &LaunchRequest) -> Vec<IdeOffer> {
    if request.ide.is_none() && !request.url_path.as_str().is_empty() {
        return Vec::new();
    }
    let chosen = request.ide.unwrap_or(Ide::Lab);
    Ide::ALL
        .into_iter()
        .map(|ide| IdeOffer {
            value: ide.as_str(),
            label: if ide == Ide::Lab {
                "JupyterLab (default)"
            } else {
                ide.label()
            },
            selected: ide == chosen,
        })
        .collect()
}

/// A link anyone can open to launch the same thing.
pub fn share_link(state: &AppState, request: &LaunchRequest) -> String {
    let mut url = state
        .config
        .server
        .public_url
        .join("VM_start")
        .expect("a relative path joins");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("giturl", request.repo.as_str());
        if request.git_ref.as_str() != "HEAD" {
            q.append_pair("ref", request.git_ref.as_str());
        }
        match request.ide {
            Some(ide) => {
                q.append_pair("ide", ide.as_str());
            }
            None if !request.url_path.as_str().is_empty() => {
                q.append_pair("urlpath", request.url_path.as_str());
            }
            None => {}
        }
        if let Some(profile) = &request.profile {
            q.append_pair("profile", profile.as_str());
        }
    }
    url.into()
}

/// The session's GitHub token that may read organization membership.
async fn github_token(user: &RegisteredUser) -> Result<Option<SecretString>, WebError> {
    Ok(user
        .visitor
        .org_access()
        .await?
        .map(|a| SecretString::from(a.github_token)))
}

async fn confirm(
    State(state): State<AppState>,
    user: RegisteredUser,
    Query(params): Query<LaunchParams>,
) -> Result<Response, WebError> {
    let existing = match state.store.live_vm_of(user.user.github_id).await? {
        Some(vm) => Some(VmView::load(&state.provisioner, &state.config.launch, &vm).await?),
        None => None,
    };
    let (status, request, error) = match params.validate(&state.config.launch.default_repo) {
        Err(e) => (StatusCode::BAD_REQUEST, None, Some(e)),
        Ok(r) => match state.config.launch.permits(&r.repo) {
            Err(e) => (StatusCode::FORBIDDEN, None, Some(e)),
            Ok(()) => (StatusCode::OK, Some(r), None),
        },
    };
    let mut offers = Vec::new();
    let (status, request, error) = match request {
        Some(r) if existing.is_none() => {
            let token = github_token(&user).await?;
            match profile_choice::choose(&state, &user.user, token.as_ref(), r.profile.as_ref())
                .await
            {
                Ok((chosen, allowed)) => {
                    offers = profile_choice::offers(&state, &user.user, &allowed, chosen).await?;
                    (status, Some(r), error)
                }
                Err(why) => (
                    StatusCode::FORBIDDEN,
                    None,
                    Some(capitalized(&why.to_string())),
                ),
            }
        }
        other => (status, other, error),
    };
    let share_link = request.as_ref().map(|r| share_link(&state, r));
    let ides = request.as_ref().map(ide_offers).unwrap_or_default();
    let page = ConfirmPage {
        layout: user.visitor.layout(&state, "Launch a VM"),
        request,
        error,
        params,
        existing,
        share_link,
        offers,
        ides,
    };
    Ok((status, render(page)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LaunchForm {
    csrf: String,
    #[serde(flatten)]
    params: LaunchParams,
}

impl CsrfProtected for LaunchForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn launch(
    State(state): State<AppState>,
    user: RegisteredUser,
    CsrfForm(form): CsrfForm<LaunchForm>,
) -> Result<Response, WebError> {
    let refused = |status: StatusCode, message: String, params: LaunchParams| {
        let page = ConfirmPage {
            layout: user.visitor.layout(&state, "Launch a VM"),
            request: None,
            error: Some(message),
            params,
            existing: None,
            share_link: None,
            offers: Vec::new(),
            ides: Vec::new(),
        };
        Ok((status, render(page)?).into_response())
    };
    let mut request = match form.params.validate(&state.config.launch.default_repo) {
        Ok(r) => r,
        Err(message) => return refused(StatusCode::BAD_REQUEST, message, form.params),
    };
    ensure_still_member(&state, &user).await?;
    let token = github_token(&user).await?;
    match profile_choice::choose(&state, &user.user, token.as_ref(), request.profile.as_ref()).await
    {
        Ok((chosen, _)) => request.profile = chosen.map(|p| p.name.clone()),
        Err(why) => {
            return refused(
                StatusCode::FORBIDDEN,
                capitalized(&why.to_string()),
                form.params,
            );
        }
    }
    match state.provisioner.launch(&user.user, &request).await {
        // A double click or a second tab lands on the same VM.
        Ok(_) | Err(ProvisionError::AlreadyHasVm(_)) => {
            Ok(Redirect::to("/VM_status").into_response())
        }
        Err(ProvisionError::NotAllowed(message)) => {
            refused(StatusCode::FORBIDDEN, message, form.params)
        }
        Err(ProvisionError::Paused(why)) => {
            let banner = state
                .config
                .server
                .banner
                .as_deref()
                .unwrap_or("Please try again later.");
            Err(WebError::Conflict(format!(
                "Launches are paused: {why}. {banner}"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// A sentence from a message that starts lower-case.
fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

/// A user let in by organization membership is checked with GitHub again
/// before each launch: leaving the organization ends access at once.
async fn ensure_still_member(state: &AppState, user: &RegisteredUser) -> Result<(), WebError> {
    if user.allowed_by != AllowedBy::Organization {
        return Ok(());
    }
    let (LoginMode::Github(github), Some(access)) =
        (&state.login_mode, user.visitor.org_access().await?)
    else {
        return Err(WebError::NotRegistered {
            login: user.user.login.to_string(),
        });
    };
    let login = &user.user.login;
    let token = secrecy::SecretString::from(access.github_token);
    let member = github
        .is_member(&token, login, &state.config.registration.allowed_orgs)
        .await
        .map_err(|e| {
            WebError::Conflict(format!("Cannot check your organization membership: {e}"))
        })?;
    if !member {
        user.visitor.revoke_org_access().await?;
        return Err(WebError::NotRegistered {
            login: user.user.login.to_string(),
        });
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
struct PathParams {
    urlpath: Option<String>,
    labpath: Option<String>,
    filepath: Option<String>,
}

/// Redirect a Binder-style link to the confirmation page.
fn to_confirmation(
    repo: Result<RepoSpec, String>,
    git_ref: &str,
    extra: PathParams,
) -> Result<Response, WebError> {
    let repo = repo.map_err(WebError::BadRequest)?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("giturl", repo.as_str());
    query.append_pair("ref", git_ref);
    for (key, value) in [
        ("urlpath", extra.urlpath),
        ("labpath", extra.labpath),
        ("filepath", extra.filepath),
    ] {
        if let Some(v) = value {
            query.append_pair(key, &v);
        }
    }
    Ok(Redirect::to(&format!("/VM_start?{}", query.finish())).into_response())
}

async fn binder_gh_head(
    Path((org, repo)): Path<(String, String)>,
    Query(extra): Query<PathParams>,
) -> Result<Response, WebError> {
    to_confirmation(RepoSpec::github(&org, &repo), "HEAD", extra)
}

async fn binder_gh(
    Path((org, repo, git_ref)): Path<(String, String, String)>,
    Query(extra): Query<PathParams>,
) -> Result<Response, WebError> {
    to_confirmation(RepoSpec::github(&org, &repo), &git_ref, extra)
}

async fn binder_gl(
    Path((project, git_ref)): Path<(String, String)>,
    Query(extra): Query<PathParams>,
) -> Result<Response, WebError> {
    to_confirmation(RepoSpec::gitlab(&project), &git_ref, extra)
}

async fn binder_git(
    Path((url, git_ref)): Path<(String, String)>,
    Query(extra): Query<PathParams>,
) -> Result<Response, WebError> {
    to_confirmation(RepoSpec::parse(&url), &git_ref, extra)
}
