//! The archive itself: a gzip'd tar of the listed entries, each file's
//! bytes streamed from Jupyter into the tar as they arrive.

use super::{WorkEntry, WorkSource};
use async_compression::tokio::write::GzipEncoder;
use futures_util::TryStreamExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tar::{Builder, EntryType, Header};

/// Write `entries`, read from `source`, as a `.tar.gz` to `out`. A file
/// that cannot be read, or whose length is not what Jupyter announced,
/// ends it with an error: a tar whose header lies about a size is broken.
pub async fn write_tar_gz<W: AsyncWrite + Unpin + Send + Sync + 'static>(
    source: &WorkSource,
    entries: &[WorkEntry],
    out: W,
) -> io::Result<()> {
    let mut tar = Builder::new(GzipEncoder::new(out));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for entry in entries {
        let mut header = Header::new_gnu();
        header.set_mtime(now);
        match entry {
            WorkEntry::Directory(path) => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), tokio::io::empty())
                    .await?;
            }
            WorkEntry::File(path, listed) => {
                let response = source.open(path).await.map_err(io::Error::other)?;
                let size = response.content_length().or(*listed).ok_or_else(|| {
                    io::Error::other(format!("Jupyter did not say how long {path} is"))
                })?;
                header.set_entry_type(EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                let bytes = response.bytes_stream().map_err(io::Error::other);
                let body = tokio_util::io::StreamReader::new(bytes);
                tar.append_data(&mut header, path, Exactly::new(body, size))
                    .await?;
            }
        }
    }
    let mut gzip = tar.into_inner().await?;
    gzip.shutdown().await
}

/// `inner`, which must yield exactly `left` bytes: fewer is an error, and
/// no more are read.
struct Exactly<R> {
    inner: tokio::io::Take<R>,
    left: u64,
}

impl<R: AsyncRead> Exactly<R> {
    fn new(inner: R, left: u64) -> Self {
        Self {
            inner: tokio::io::AsyncReadExt::take(inner, left),
            left,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Exactly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        match poll {
            Poll::Ready(Ok(())) if read == 0 && self.left > 0 && buf.remaining() > 0 => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended before the length Jupyter announced",
                )))
            }
            Poll::Ready(Ok(())) => {
                self.left -= read;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn exactly_the_announced_length_or_an_error() {
        let mut out = Vec::new();
        Exactly::new(&b"hello world"[..], 5)
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, b"hello");
        let short = Exactly::new(&b"hi"[..], 5)
            .read_to_end(&mut Vec::new())
            .await;
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
