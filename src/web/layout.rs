//! What every page's frame needs: who is logged in, the CSRF token for the
//! logout form, and the operator's banner.

use askama::Template;
use axum::response::Html;

use super::WebError;

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub title: String,
    pub login: Option<String>,
    pub csrf: String,
    pub banner: Option<String>,
    pub is_admin: bool,
}

impl Layout {
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
