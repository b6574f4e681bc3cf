//! `GET /VM_delete` asks to confirm; `POST /VM_delete` deletes the VM with
//! its volume and floating IP (the driver does the work).

use super::layout::{Layout, render};
use super::session::{CsrfForm, CsrfOnly, RegisteredUser};
use super::status::VmView;
use super::{AppState, WebError};
use crate::provision::DeleteReason;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new().route("/VM_delete", get(confirm).post(delete))
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    layout: Layout,
    vm: Option<VmView>,
}

async fn confirm(
    State(state): State<AppState>,
    user: RegisteredUser,
) -> Result<Response, WebError> {
    let vm = match state.store.live_vm_of(user.user.github_id).await? {
        Some(vm) => Some(VmView::load(&state.provisioner, &state.config.launch, &vm).await?),
        None => None,
    };
    Ok(render(DeletePage {
        layout: user.visitor.layout(&state, "Delete your VM"),
        vm,
    })?
    .into_response())
}

async fn delete(
    State(state): State<AppState>,
    user: RegisteredUser,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let Some(vm) = state.store.live_vm_of(user.user.github_id).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    state
        .provisioner
        .delete(
            &vm,
            DeleteReason::Owner,
            &format!("deleted by its owner {}", user.user.login),
        )
        .await?;
    Ok(Redirect::to("/VM_status").into_response())
}
