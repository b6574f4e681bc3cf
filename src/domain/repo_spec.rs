use serde::Serialize;
use std::fmt;
use url::Url;

/// Longest repository URL we accept: it travels in server metadata, whose
/// values Nova caps at 255 characters.
const MAX_LEN: usize = 255;

/// An https git repository URL, without credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoSpec(String);

/// What a git host's repository path is made of, besides `%`-escapes.
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/')
}

/// What a host name is made of.
fn host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.')
}

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
        if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "the repository URL contains {c:?}: spaces or control characters are not part of a git URL"
            ));
        }
        // Checked before parsing: the url crate would quietly resolve them.
        if s.split(['/', '\\']).any(|seg| seg == "." || seg == "..") {
            return Err("the repository URL must not contain . or .. segments".into());
        }
        let not_a_url = |e: url::ParseError| format!("the repository URL is not a URL ({e})");
        let Some((scheme, rest)) = s.split_once("://") else {
            Url::parse(s).map_err(not_a_url)?;
            return Err(
                "your repository URL is not a git URL we can clone: it must start with https://"
                    .into(),
            );
        };
        if !scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "your repository URL is not a git URL we can clone: it must start with https:// (not {scheme}://)"
            ));
        }
        // Checked on the text as typed, not on what the url crate makes of
        // it: it percent-encodes, reads a backslash as `/` and converts
        // international host names, all silently.
        check_text(rest)?;
        let url = Url::parse(s).map_err(not_a_url)?;
        if url.host_str().is_none_or(|h| h.is_empty()) {
            return Err("the repository URL has no host".into());
        }
        let path = url.path().trim_matches('/');
        if path.is_empty() {
            return Err("the repository URL names a host but no repository".into());
        }
        if url.as_str().len() > MAX_LEN {
            return Err(format!(
                "the repository URL is longer than {MAX_LEN} characters"
            ));
        }
        Ok(Self(url.into()))
    }

    /// The host the repository is on, lower-case.
    pub fn host(&self) -> &str {
        let rest = &self.0["https://".len()..];
        let authority = rest.split('/').next().unwrap_or(rest);
        authority.split(':').next().unwrap_or(authority)
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

/// `host[:port]/path` of an https URL as typed: no credentials, no query
/// or fragment, a host name, a port of digits, and a path of the
/// characters git hosts use with `%`-escapes of anything but controls.
fn check_text(rest: &str) -> Result<(), String> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    if authority.contains('@') {
        return Err(
            "the repository URL must not contain a user name or password (user:password@): they would be visible to others"
                .into(),
        );
    }
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    if host.is_empty() {
        return Err("the repository URL has no host".into());
    }
    if let Some(c) = host.chars().find(|c| !host_char(*c)) {
        return Err(format!(
            "the host of the repository URL contains {c:?}: a host name has only letters, digits, - and ."
        ));
    }
    if let Some(c) = port.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!(
            "the port of the repository URL contains {c:?}: a port is digits only"
        ));
    }
    if rest.contains(['?', '#']) {
        return Err("the repository URL must not have a ?query or #fragment".into());
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let hex: String = chars.by_ref().take(2).collect();
            if hex.len() != 2 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(
                    "the repository URL contains a % that is not followed by two hex digits".into(),
                );
            }
            if u8::from_str_radix(&hex, 16).is_ok_and(|byte| byte.is_ascii_control()) {
                return Err(format!(
                    "the repository URL contains %{hex}, an escaped control character"
                ));
            }
            continue;
        }
        if !path_char(c) {
            return Err(format!(
                "the repository URL contains {c:?}, which no git host uses in a repository path: \
                 use letters, digits, - . _ ~ / and %-escapes"
            ));
        }
    }
    Ok(())
}

impl fmt::Display for RepoSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::text_column::stored_as_text!(RepoSpec, RepoSpec::parse);

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
            "https://token@github.com/a/b",
            "https://:pw@github.com/a/b",
            "https://github.com/a/b?x=1",
            "https://github.com/a/b#frag",
            "https://github.com/a/b c",
            "https://github.com/a/b\n;reboot",
            "https://github.com",
            "https://github.com/",
            "https://github.com/../../etc",
            "https:///github.com/a/b",
            "https:github.com/a/b",
        ] {
            assert!(RepoSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn shell_metacharacters_are_refused_by_name() {
        for (bad, named) in [
            ("https://github.com/a/$(id)", "'$'"),
            ("https://github.com/a/b`x`", "'`'"),
            ("https://github.com/a/b;reboot", "';'"),
            ("https://github.com/a/b|x", "'|'"),
            ("https://github.com/a/b&x", "'&'"),
            ("https://github.com/a/b'x", "'\\''"),
            ("https://github.com/a/b\"x", "'\"'"),
            ("https://github.com/a/<b>", "'<'"),
            ("https://github.com/a/b*", "'*'"),
            ("https://github.com/a/b!", "'!'"),
            ("https://github.com/a/b,c", "','"),
            ("https://github.com/a\\b", "'\\\\'"),
            ("https://git$hub.com/a/b", "'$'"),
            ("https://gïthub.com/a/b", "'ï'"),
            ("https://github.com:22x/a/b", "'x'"),
            ("https://github.com/a/é", "'é'"),
        ] {
            let e = RepoSpec::parse(bad).unwrap_err();
            assert!(e.contains(named), "{bad:?}: {e}");
        }
    }

    #[test]
    fn percent_escapes_are_allowed_but_not_of_controls() {
        let r = RepoSpec::parse("https://git.example.org/gr%C3%BCn/repo").unwrap();
        assert_eq!(r.as_str(), "https://git.example.org/gr%C3%BCn/repo");
        for bad in [
            "https://github.com/a/b%0A",
            "https://github.com/a/b%1b",
            "https://github.com/a/b%7F",
            "https://github.com/a/b%",
            "https://github.com/a/b%4",
            "https://github.com/a/b%zz",
            "https://github.com/a/b%+4",
        ] {
            assert!(RepoSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_port_and_upper_case_are_fine_and_the_host_is_known() {
        let r = RepoSpec::parse("https://Git.Example.org:8443/Group/Repo.git").unwrap();
        assert_eq!(r.as_str(), "https://git.example.org:8443/Group/Repo.git");
        assert_eq!(r.host(), "git.example.org");
        let r = RepoSpec::parse("https://github.com/a/b").unwrap();
        assert_eq!(r.host(), "github.com");
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
