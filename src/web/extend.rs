//! `POST /VM_extend`: the owner pushes the expiry back, a limited number
//! of times (`launch.max_extensions` by `launch.extension_hours`).

use super::session::{CsrfForm, CsrfOnly, RegisteredUser};
use super::{AppState, WebError};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;

pub fn router() -> Router<AppState> {
    Router::new().route("/VM_extend", post(extend))
}

async fn extend(
    State(state): State<AppState>,
    user: RegisteredUser,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let Some(vm) = state.store.live_vm_of(user.user.github_id).await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let extended = state.provisioner.extend(&vm).await?;
    if !extended {
        return Err(WebError::Conflict(format!(
            "Your VM cannot be extended any more: it has had its {} extension(s).",
            state.config.launch.max_extensions
        )));
    }
    Ok(Redirect::to("/VM_status").into_response())
}
