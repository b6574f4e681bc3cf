//! What every page's frame needs: who is logged in, the CSRF token for the
//! logout form, the operator's banner, and whether the cloud is simulated.

use askama::Template;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{Html, Response};

use super::{AppState, WebError};

tokio::task_local! {
    /// Whether this request is served on the simulated cloud. Error pages
    /// are rendered far from the application state, so the fact travels
    /// with the request's task instead.
    static SIMULATED_CLOUD: bool;
}

/// Middleware: mark the request's task with the kind of cloud, for the
/// "simulated cloud" banner of every page.
pub async fn with_cloud_kind(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let simulated = state.provisioner.cloud().kind() == "simulated";
    SIMULATED_CLOUD.scope(simulated, next.run(request)).await
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub title: String,
    pub login: Option<String>,
    pub csrf: String,
    pub banner: Option<String>,
    pub is_admin: bool,
}

impl Layout {
    /// Whether the page says that no VM is real: the simulated cloud runs
    /// only when named in the configuration (or in `demo`), and nobody
    /// should mistake its VMs for real ones.
    pub fn simulated_cloud(&self) -> bool {
        SIMULATED_CLOUD.try_with(|s| *s).unwrap_or(false)
    }

    /// A frame without a visitor (error pages).
    pub fn bare(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            ..Self::default()
        }
    }
}

/// Render a page, turning a template failure into a logged 500.
pub fn render<T: Template>(page: T) -> Result<Html<String>, WebError> {
    Ok(Html(page.render()?))
}
