use serde::Serialize;
use std::fmt;
use url::Url;

/// Longest repository URL we accept: it travels in server metadata, whose
/// values Nova caps at 255 characters.
const MAX_LEN: usize = 255;

/// An https git repository URL, without credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSpec(String);

impl RepoSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("the repository URL is empty".into());
        }
        if s.len() > MAX_LEN {
            return Err(format!(
                "the repository URL is longer than {MAX_LEN} characters"
            ));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("the repository URL contains spaces or control characters".into());
        }
        // Checked before parsing: the url crate would quietly resolve them.
        if s.split(['/', '\\']).any(|seg| seg == "." || seg == "..") {
            return Err("the repository URL must not contain . or .. segments".into());
        }
        let url = Url::parse(s).map_err(|e| format!("the repository URL is not a URL ({e})"))?;
        if url.scheme() != "https" {
            return Err(format!(
                "your repository URL is not a git URL we can clone: it must start with https:// (not {}://)",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the repository URL must not contain a user name or password: they would be visible to others"
                    .into(),
            );
        }
        if url.host_str().is_none_or(|h| h.is_empty()) {
            return Err("the repository URL has no host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("the repository URL must not have a ?query or #fragment".into());
        }
        let path = url.path().trim_matches('/');
        if path.is_empty() {
            return Err("the repository URL names a host but no repository".into());
        }
        if path.split('/').any(|seg| seg == "." || seg == "..") {
            return Err("the repository URL must not contain . or .. segments".into());
        }
        if url.as_str().len() > MAX_LEN {
            return Err(format!(
                "the repository URL is longer than {MAX_LEN} characters"
            ));
        }
        Ok(Self(url.into()))
    }

    /// `gh` Binder provider: `org/repo` on github.com.
    pub fn github(org: &str, repo: &str) -> Result<Self, String> {
        Self::hosted("github.com", &[org, repo])
    }

    /// `gl` Binder provider: a (possibly nested) project path on gitlab.com.
    pub fn gitlab(project: &str) -> Result<Self, String> {
        let parts: Vec<&str> = project.split('/').collect();
        if parts.len() < 2 {
            return Err("a GitLab project is written group/project".into());
        }
        Self::hosted("gitlab.com", &parts)
    }

    fn hosted(host: &str, parts: &[&str]) -> Result<Self, String> {
        for part in parts {
            let ok = !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(format!(
                    "{part:?} is not a valid repository or organisation name"
                ));
            }
        }
        let path = parts.join("/");
        let path = path.strip_suffix(".git").unwrap_or(&path);
        Self::parse(&format!("https://{host}/{path}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_git_urls_are_accepted() {
        let r = RepoSpec::parse("https://github.com/binder-examples/requirements").unwrap();
        assert_eq!(
            r.as_str(),
            "https://github.com/binder-examples/requirements"
        );
        RepoSpec::parse("https://gitlab.example.org/group/sub/project.git").unwrap();
    }

    #[test]
    fn other_schemes_are_rejected() {
        for bad in [
            "http://github.com/a/b",
            "git@github.com:a/b.git",
            "ssh://github.com/a/b",
            "file:///etc/passwd",
            "ext::sh -c id",
            "--upload-pack=touch /tmp/x",
        ] {
            assert!(RepoSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn urls_with_credentials_queries_or_shell_characters_are_rejected() {
        for bad in [
            "https://user:pw@github.com/a/b",
            "https://github.com/a/b?x=1",
            "https://github.com/a/b#frag",
            "https://github.com/a/b c",
            "https://github.com/a/b\n;reboot",
            "https://github.com",
            "https://github.com/",
            "https://github.com/../../etc",
        ] {
            assert!(RepoSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn shell_metacharacters_cannot_survive_parsing() {
        // The url crate percent-encodes what is not allowed in a path; what
        // remains is still only ever passed as data, never as shell.
        let r = RepoSpec::parse("https://github.com/a/$(id)`x`").unwrap();
        assert!(!r.as_str().contains('`'));
    }

    #[test]
    fn a_very_long_url_is_rejected() {
        let long = format!("https://github.com/a/{}", "b".repeat(300));
        assert!(RepoSpec::parse(&long).is_err());
    }

    #[test]
    fn binder_providers_map_to_https_urls() {
        assert_eq!(
            RepoSpec::github("org", "repo.git").unwrap().as_str(),
            "https://github.com/org/repo"
        );
        assert_eq!(
            RepoSpec::gitlab("group/sub/project").unwrap().as_str(),
            "https://gitlab.com/group/sub/project"
        );
        assert!(RepoSpec::github("org", "re po").is_err());
        assert!(RepoSpec::gitlab("lonely").is_err());
    }
}
