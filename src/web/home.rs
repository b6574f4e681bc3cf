//! `/`: who you are, your VM, and a launch form with a link generator.

use super::layout::{Layout, render};
use super::session::Visitor;
use super::status::VmView;
use super::{AppState, LoginMode, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    logged_in: bool,
    registered: bool,
    withdrawn: bool,
    demo: bool,
    vm: Option<VmView>,
    default_repo: String,
    launch_base: String,
}

async fn home(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    let registered = visitor.user.as_ref().is_some_and(|u| u.is_registered());
    let vm = match visitor.user.as_ref().filter(|u| u.is_registered()) {
        Some(user) => match state.store.live_vm_of(user.github_id).await? {
            Some(vm) => Some(VmView::load(&state.provisioner, &state.config.launch, &vm).await?),
            None => None,
        },
        None => None,
    };
    Ok(render(HomePage {
        layout: visitor.layout(&state, "stackbinder"),
        logged_in: visitor.user.is_some(),
        registered,
        withdrawn: visitor.user.as_ref().is_some_and(|u| u.is_withdrawn()),
        demo: matches!(state.login_mode, LoginMode::Demo),
        vm,
        default_repo: state.config.launch.default_repo.to_string(),
        launch_base: super::register::launch_base(&state),
    })?
    .into_response())
}
