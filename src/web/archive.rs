//! `GET /storage/archive`: the owner's work (`/home/jovyan/work`) as a
//! `.tar.gz`, read from their running Jupyter (`provision::archive`) and
//! streamed to them as it is made. Their own session only; the list is
//! read before the first byte, so a VM that is not ready, or a work
//! directory past the bounds, gets a page that says so.

use super::session::RegisteredUser;
use super::{AppState, WebError};
use crate::provision::archive::{ArchiveError, write_tar_gz};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

pub fn router() -> Router<AppState> {
    Router::new().route("/storage/archive", get(download))
}

fn refused(e: ArchiveError) -> WebError {
    match e {
        ArchiveError::Store(e) => e.into(),
        ArchiveError::NoStorage => WebError::NotFound,
        other => WebError::Conflict(other.to_string()),
    }
}

async fn download(
    State(state): State<AppState>,
    user: RegisteredUser,
) -> Result<Response, WebError> {
    let login = user.user.login.clone();
    let source = state
        .provisioner
        .work_source(user.user.github_id)
        .await
        .map_err(refused)?;
    let entries = source.list().await.map_err(refused)?;
    tracing::info!(user = %login, entries = entries.len(), "downloading the work as an archive");
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    let made = tokio::spawn(async move { write_tar_gz(&source, &entries, writer).await });
    // A failure half-way ends the body with an error, so the client sees
    // a broken download rather than an archive that looks complete.
    let outcome = futures_util::stream::once(async move {
        let failed = match made.await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => e,
            Err(e) => std::io::Error::other(e),
        };
        tracing::warn!(user = %login, error = %failed, "the archive could not be finished");
        Some(Err(failed))
    })
    .filter_map(std::future::ready);
    let body = Body::from_stream(ReaderStream::new(reader).chain(outcome));
    let name = format!(
        "attachment; filename=\"work-{}-{}.tar.gz\"",
        user.user.login,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}
