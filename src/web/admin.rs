//! `/admin`: the operator's view of a whole course. Every VM with its owner,
//! repository, state, age, expiry and last error; the users and the
//! registration links; the warm pool's VMs (state, age, prebuilt
//! repositories); and the levers: delete any VM, revoke a user (which
//! also deletes their VM), make and revoke registration links.
//! Only `registration.admins` see it; to anyone else it does not exist.

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, CsrfProtected, RegisteredUser};
use super::{AppState, WebError};
use crate::access::{Action, LinkLabel, LinkRequest};
use crate::domain::{GithubId, VmId};
use crate::provision::DeleteReason;
use crate::store::{Invite, RegistrationLink, User, VmRecord};
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/vms/{id}/delete", post(delete_vm))
        .route("/admin/users/{id}/revoke", post(revoke_user))
        .route("/admin/users/{id}/allow", post(allow_user))
        .route("/admin/links", post(create_link))
        .route("/admin/links/{id}/revoke", post(revoke_link))
}

/// A registered user who is in `registration.admins`.
pub struct Admin(RegisteredUser);

impl Admin {
    pub fn login(&self) -> &crate::domain::Login {
        &self.0.user.login
    }
}

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        RegisteredUser::allowed_to(parts, state, |org_access| Action::Administer { org_access })
            .await
            .map(Self)
    }
}

struct VmRow {
    vm: VmRecord,
    age: String,
}

/// A warm-pool VM, as the admin sees it.
struct PoolRow {
    name: String,
    state: &'static str,
    age: String,
    prebuilt: String,
    /// Why it is being deleted.
    reason: String,
}

struct LinkRow {
    link: RegistrationLink,
    state: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    layout: Layout,
    vms: Vec<VmRow>,
    /// The warm pool's VMs; `pool_size` what it holds now (`[pool]`).
    pool: Vec<PoolRow>,
    pool_size: u32,
    users: Vec<User>,
    invites: Vec<Invite>,
    links: Vec<LinkRow>,
    storage: Vec<super::admin_storage::StorageRow>,
    /// A link just made: shown this once.
    new_link: Option<String>,
    max_vms: String,
    /// This installation's id, which everything it creates carries.
    installation: String,
}

fn age(since: DateTime<Utc>) -> String {
    let d = Utc::now() - since;
    if d.num_hours() > 0 {
        format!("{} h {} min", d.num_hours(), d.num_minutes() % 60)
    } else {
        format!("{} min", d.num_minutes())
    }
}

async fn render_page(
    state: &AppState,
    admin: &Admin,
    new_link: Option<String>,
) -> Result<Response, WebError> {
    let now = Utc::now();
    let vms = state
        .store
        .list_vms(false)
        .await?
        .into_iter()
        .map(|vm| VmRow {
            age: age(vm.created_at),
            vm,
        })
        .collect();
    let pool = state
        .store
        .pool_vms()
        .await?
        .into_iter()
        .map(|vm| PoolRow {
            name: vm.name,
            state: vm.state.as_str(),
            age: age(vm.created_at),
            prebuilt: vm.prebuilt.0.join(", "),
            reason: vm.reason.unwrap_or_default(),
        })
        .collect();
    let links = state
        .store
        .list_links()
        .await?
        .into_iter()
        .map(|link| LinkRow {
            state: format!("{:?}", link.state(now)).to_lowercase(),
            link,
        })
        .collect();
    let page = AdminPage {
        layout: admin.0.visitor.layout(state, "Admin"),
        vms,
        pool,
        pool_size: state.config.pool.size_at(now),
        users: state.store.list_users().await?,
        invites: state.store.list_invites().await?,
        links,
        storage: super::admin_storage::rows(state).await?,
        new_link,
        max_vms: match state.config.cloud.max_vms {
            None => "no limit".into(),
            Some(0) => "0: launches are paused".into(),
            Some(n) => n.to_string(),
        },
        installation: state.provisioner.installation().to_string(),
    };
    Ok(render(page)?.into_response())
}

async fn page(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    render_page(&state, &admin, None).await
}

async fn delete_vm(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let id: VmId = id.parse().map_err(|_| WebError::NotFound)?;
    let vm = state.store.vm(id).await?.ok_or(WebError::NotFound)?;
    let why = format!("deleted by the admin {}", admin.0.user.login);
    state
        .provisioner
        .delete(&vm, DeleteReason::Admin, &why)
        .await?;
    Ok(Redirect::to("/admin").into_response())
}

/// The user with GitHub id `id`, or a 404.
async fn known_user(state: &AppState, id: i64) -> Result<User, WebError> {
    state
        .store
        .user(GithubId(id))
        .await?
        .ok_or(WebError::NotFound)
}

async fn revoke_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let user = known_user(&state, id).await?;
    let login = user.login.clone();
    let by = format!("admin {}", admin.0.user.login);
    let why = format!("its owner was revoked by the admin {}", admin.0.user.login);
    state.access.revoke(&login, &by, &why).await?;
    Ok(Redirect::to("/admin").into_response())
}

/// Register a user (again): the one way, besides `users add`, to lift a
/// revocation.
async fn allow_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let user = known_user(&state, id).await?;
    let by = format!("admin {}", admin.0.user.login);
    state.access.allow_user(user.github_id, &by).await?;
    tracing::info!(user = %user.login, admin = %admin.0.user.login, "user allowed");
    Ok(Redirect::to("/admin").into_response())
}

#[derive(Debug, Deserialize)]
struct LinkForm {
    csrf: String,
    label: String,
    expires_in_days: Option<String>,
    max_uses: Option<String>,
}

impl CsrfProtected for LinkForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// An optional positive number from a form field ("" = none).
fn positive(field: &str, value: Option<&str>) -> Result<Option<i64>, WebError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(WebError::BadRequest(format!(
                "{field} must be a whole number above 0"
            ))),
        },
    }
}

async fn create_link(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<LinkForm>,
) -> Result<Response, WebError> {
    let label = LinkLabel::parse(&form.label).ok_or_else(|| {
        WebError::BadRequest("A link needs a label of 1 to 100 characters.".into())
    })?;
    let request = LinkRequest {
        label,
        expires_in_days: positive("Expires in (days)", form.expires_in_days.as_deref())?,
        max_uses: positive("Maximum uses", form.max_uses.as_deref())?,
    };
    let created = state
        .access
        .create_link(request, admin.0.user.login.as_str())
        .await?;
    render_page(&state, &admin, Some(created.url.to_string())).await
}

async fn revoke_link(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    state.access.revoke_link(id).await?;
    Ok(Redirect::to("/admin").into_response())
}
