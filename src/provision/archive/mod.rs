//! "Download my work": everything under the container's
//! `/home/jovyan/work` (Jupyter's `work/`), read from the owner's running
//! Jupyter at the address the proxy forwards to, with the VM's token:
//! the Contents API lists it (`GET api/contents/<dir>?content=1`, every
//! directory), `GET files/<path>` gives each file's bytes, streamed into a
//! `.tar.gz` (`tar_gz`) without holding a whole file in memory.
//!
//! Bounded: at most `MAX_FILES` entries and `MAX_DEPTH` levels (a symlink
//! loop in the work directory ends there with a clear error), and only a
//! path Jupyter names as `<parent>/<name>` with a plain name is taken, so
//! no entry of the archive can point outside `work/`.

mod tar_gz;

pub use tar_gz::write_tar_gz;

use super::Provisioner;
use crate::domain::{GithubId, VmState};
use crate::store::StoreError;
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// The directory under Jupyter's root that the home volume is mounted at.
pub const WORK: &str = "work";
/// The most files and directories one archive holds.
pub const MAX_FILES: usize = 20_000;
/// The deepest directory one archive goes into, below `work/`.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("you have no storage to download")]
    NoStorage,
    #[error(
        "your work is read from your running VM: launch one (or wait until it is ready), then download it"
    )]
    NotReady,
    #[error("your Jupyter did not answer as expected: {0}; try again in a minute")]
    Jupyter(String),
    #[error(
        "your work has more than {MAX_FILES} files and folders: download parts of it from Jupyter instead"
    )]
    TooManyFiles,
    #[error(
        "your work goes deeper than {MAX_DEPTH} folders (a link to a folder above?): download it from Jupyter instead"
    )]
    TooDeep,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One entry of the archive: a path below Jupyter's root (`work/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkEntry {
    Directory(String),
    /// With the size the listing gave, if any.
    File(String, Option<u64>),
}

/// A model of the Contents API: a directory's children.
#[derive(Debug, Deserialize)]
struct Model {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Child {
    name: String,
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: Option<u64>,
}

/// `parent/name` if Jupyter's child `name` at `path` is a plain name
/// right below `parent`; `None` for anything that could lead elsewhere.
pub fn child_path(parent: &str, name: &str, path: &str) -> Option<String> {
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    let expected = format!("{parent}/{name}");
    (plain && path.trim_start_matches('/') == expected).then_some(expected)
}

/// The owner's Jupyter, reached as the proxy reaches it.
pub struct WorkSource {
    http: reqwest::Client,
    /// `http://<address>:<port>/user/<login>/`.
    base: Url,
    token: String,
}

impl WorkSource {
    /// `base` joined with `api`-style `prefix` segments and `path`'s,
    /// each encoded on its own.
    fn url(&self, prefix: &[&str], path: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http URL")
            .pop_if_empty()
            .extend(prefix)
            .extend(path.split('/'));
        url
    }

    async fn get(&self, url: Url) -> Result<reqwest::Response, ArchiveError> {
        let response = self
            .http
            .get(url)
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await
            .map_err(|e| ArchiveError::Jupyter(e.without_url().to_string()))?;
        match response.status() {
            s if s.is_success() => Ok(response),
            s => Err(ArchiveError::Jupyter(format!("it answered {s}"))),
        }
    }

    /// Every directory and file under `work/`, parents first.
    pub async fn list(&self) -> Result<Vec<WorkEntry>, ArchiveError> {
        let mut entries = Vec::new();
        let mut to_visit = vec![(WORK.to_owned(), 0)];
        while let Some((dir, depth)) = to_visit.pop() {
            let mut url = self.url(&["api", "contents"], &dir);
            url.set_query(Some("content=1"));
            let model: Model = self
                .get(url)
                .await?
                .json()
                .await
                .map_err(|e| ArchiveError::Jupyter(e.without_url().to_string()))?;
            if model.kind != "directory" {
                return Err(ArchiveError::Jupyter(format!("{dir} is not a directory")));
            }
            let children: Vec<Child> = serde_json::from_value(model.content.unwrap_or_default())
                .map_err(|e| ArchiveError::Jupyter(e.to_string()))?;
            for child in children {
                let Some(path) = child_path(&dir, &child.name, &child.path) else {
                    tracing::warn!(name = %child.name.escape_debug(), "an entry that is not a plain name is left out");
                    continue;
                };
                if entries.len() >= MAX_FILES {
                    return Err(ArchiveError::TooManyFiles);
                }
                if child.kind == "directory" {
                    if depth + 1 > MAX_DEPTH {
                        return Err(ArchiveError::TooDeep);
                    }
                    entries.push(WorkEntry::Directory(path.clone()));
                    to_visit.push((path, depth + 1));
                } else {
                    entries.push(WorkEntry::File(path, child.size));
                }
            }
        }
        Ok(entries)
    }

    /// The raw bytes of the file at `path`, as a response to stream.
    pub async fn open(&self, path: &str) -> Result<reqwest::Response, ArchiveError> {
        self.get(self.url(&["files"], path)).await
    }
}

impl Provisioner {
    /// The owner's running Jupyter, to read their work from: only while
    /// they have storage and a ready VM.
    pub async fn work_source(&self, owner: GithubId) -> Result<WorkSource, ArchiveError> {
        let store = &self.inner.store;
        if store.home_volume(owner).await?.is_none() {
            return Err(ArchiveError::NoStorage);
        }
        let vm = store
            .live_vm_of(owner)
            .await?
            .filter(|vm| vm.state == VmState::Ready)
            .ok_or(ArchiveError::NotReady)?;
        let base = self.jupyter_upstream(&vm).ok_or(ArchiveError::NotReady)?;
        // Not the driver's client, whose short timeout is for probes: a
        // large file may take long, as long as bytes keep coming.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ArchiveError::Jupyter(e.to_string()))?;
        Ok(WorkSource {
            http,
            base,
            token: vm.jupyter_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_name_right_below_its_parent_is_taken() {
        assert_eq!(
            child_path("work", "a b é.txt", "work/a b é.txt").as_deref(),
            Some("work/a b é.txt")
        );
        assert_eq!(
            child_path("work/d", "x", "/work/d/x").as_deref(),
            Some("work/d/x")
        );
        for (name, path) in [
            ("..", "work/.."),
            (".", "work/."),
            ("", "work/"),
            ("../../etc", "work/../../etc"),
            ("a/b", "work/a/b"),
            ("a\\..", "work/a\\.."),
            ("x", "etc/x"),
            ("x", "work/y"),
        ] {
            assert_eq!(child_path("work", name, path), None, "{name:?} at {path:?}");
        }
    }

    #[test]
    fn urls_encode_every_segment_on_its_own() {
        let source = WorkSource {
            http: reqwest::Client::new(),
            base: Url::parse("http://10.0.0.5:8888/user/ada/").unwrap(),
            token: String::new(),
        };
        assert_eq!(
            source.url(&["files"], "work/a b/ü?#.txt").as_str(),
            "http://10.0.0.5:8888/user/ada/files/work/a%20b/%C3%BC%3F%23.txt"
        );
        assert_eq!(
            source.url(&["api", "contents"], "work").as_str(),
            "http://10.0.0.5:8888/user/ada/api/contents/work"
        );
    }
}
