//! Every list, every page. Nova, Cinder and Neutron cap a list at a page
//! (Nova's and Cinder's `max_limit`, 1000 by default, or less if an
//! operator says so; Neutron when `limit` is given) and link to the next
//! page with `<collection>_links` (`rel: next`). A list that reads one page
//! misses servers, and the reconciler would then delete live VMs.
//!
//! The next page is asked for at our own endpoint with the link's
//! `marker`, not at the link's URL: a cloud behind a proxy may write its
//! internal host into the link.

use super::OpenStackCloud;
use super::api::Repeat;
use super::errors::{ApiError, ApiErrorKind};
use super::session::Ready;
use osauth::ServiceRequestBuilder;
use osauth::services::ServiceType;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// What we ask for per page by default; the cloud may give fewer.
pub const PAGE_SIZE: usize = 1000;

/// Pages followed at most, so a cloud that links a page to itself ends.
const MAX_PAGES: usize = 10_000;

#[derive(Deserialize)]
struct Link {
    rel: String,
    href: String,
}

/// The `marker` of the `next` link, if there is one.
fn next_marker(links: &[Link]) -> Option<String> {
    let next = links.iter().find(|l| l.rel == "next")?;
    let url = url::Url::parse(&next.href)
        .or_else(|_| url::Url::parse("http://relative.invalid/")?.join(&next.href))
        .ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "marker")
        .map(|(_, v)| v.into_owned())
}

impl OpenStackCloud {
    /// Every item of the collection `key` (`servers`, `volumes`, `ports`,
    /// `floatingips`), following `<key>_links` page by page. `build` makes
    /// the request for one page, given the paging query (`limit`, and
    /// `marker` after the first page) to add to its own.
    pub(super) async fn list_all<S, T, F>(
        &self,
        what: &str,
        key: &str,
        build: F,
    ) -> Result<Vec<T>, ApiError>
    where
        S: ServiceType + Send,
        T: DeserializeOwned,
        F: Fn(&Ready, &[(&str, String)]) -> ServiceRequestBuilder<S>,
    {
        let links_key = format!("{key}_links");
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut paging = vec![("limit", self.page_size.to_string())];
            if let Some(m) = &marker {
                paging.push(("marker", m.clone()));
            }
            let page: serde_json::Value = self
                .api
                .call(what, Repeat::Idempotent, |r| build(r, &paging))
                .await?
                .json()?;
            let bad = |e: serde_json::Error| {
                ApiError::new(
                    what,
                    ApiErrorKind::BadAnswer,
                    format!("unexpected answer: {e}"),
                )
            };
            let batch: Vec<T> =
                serde_json::from_value(page.get(key).cloned().unwrap_or_default()).map_err(bad)?;
            let links: Vec<Link> = match page.get(&links_key) {
                Some(l) => serde_json::from_value(l.clone()).map_err(bad)?,
                None => Vec::new(),
            };
            let empty = batch.is_empty();
            items.extend(batch);
            match next_marker(&links) {
                Some(next) if !empty && marker.as_deref() != Some(next.as_str()) => {
                    marker = Some(next);
                }
                _ => return Ok(items),
            }
        }
        Err(ApiError::new(
            what,
            ApiErrorKind::BadAnswer,
            format!("the list did not end after {MAX_PAGES} pages"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_marker_comes_from_the_next_link_absolute_or_relative() {
        let links = |v: serde_json::Value| -> Vec<Link> { serde_json::from_value(v).unwrap() };
        let abs = links(serde_json::json!([
            {"rel": "previous", "href": "http://nova.internal/v2.1/servers/detail?marker=a"},
            {"rel": "next", "href": "http://nova.internal/v2.1/servers/detail?limit=2&marker=b%2Dc"}
        ]));
        assert_eq!(next_marker(&abs).as_deref(), Some("b-c"));
        let rel = links(serde_json::json!([{"rel": "next", "href": "/v2.0/ports?marker=p9"}]));
        assert_eq!(next_marker(&rel).as_deref(), Some("p9"));
        assert_eq!(next_marker(&[]), None);
    }
}
