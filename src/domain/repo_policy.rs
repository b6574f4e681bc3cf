//! Which repositories this server launches: `launch.allowed_hosts` (the
//! hosts repositories may come from; empty: any) and `launch.banned_repos`
//! (BinderHub's `banned_specs`, as URL patterns).
//!
//! A pattern is a glob, not a regular expression: it is written like the
//! URL it stands for, with `*` for any run of characters (slashes too), so
//! `https://github.com/some-org/*` bans a whole organization. A URL is full
//! of characters that mean something else in a regex (`.`, `?`, `+`), and
//! an unanchored regex bans more than it says; a glob matches what it reads.

use super::RepoSpec;

/// One pattern of `launch.banned_repos`, matched against the whole URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPattern {
    written: String,
    /// Lower-case, without a trailing `/` or `.git`, as repositories are
    /// compared (git hosts ignore case and the suffix).
    normalized: String,
}

impl RepoPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let written = raw.trim();
        if !written
            .get(.."https://".len())
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(format!(
                "{written:?} is not a repository pattern: write an https URL with * wildcards, \
                 e.g. \"https://github.com/some-org/*\""
            ));
        }
        if let Some(c) = written.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_' | '~' | '/' | '%' | ':' | '*'))
        }) {
            return Err(format!(
                "{written:?} contains {c:?}: a pattern is a repository URL with * wildcards"
            ));
        }
        Ok(Self {
            written: written.to_owned(),
            normalized: normalize(written),
        })
    }

    pub fn matches(&self, repo: &RepoSpec) -> bool {
        glob(
            self.normalized.as_bytes(),
            normalize(repo.as_str()).as_bytes(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }
}

fn normalize(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('/');
    trimmed.strip_suffix(".git").unwrap_or(trimmed).to_owned()
}

/// Whether `text` matches `pattern`, where `*` stands for any run of bytes.
/// It backtracks to the last `*` only: at worst pattern × text steps, never
/// the exponential blow-up of naive recursion.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            last_star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = last_star {
            p = star + 1;
            t = matched + 1;
            last_star = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether this server launches `repo`; if not, why, in words for its user.
pub fn check(
    repo: &RepoSpec,
    allowed_hosts: &[String],
    banned: &[RepoPattern],
) -> Result<(), String> {
    let host = repo.host();
    if !allowed_hosts.is_empty() && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "this server launches repositories from {} only, not from {host}",
            allowed_hosts.join(", ")
        ));
    }
    if banned.iter().any(|pattern| pattern.matches(repo)) {
        return Err(format!(
            "this server does not launch {repo}: its operator has banned it. \
             Ask the course staff if you need it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(url: &str) -> RepoSpec {
        RepoSpec::parse(url).unwrap()
    }

    fn pattern(p: &str) -> RepoPattern {
        RepoPattern::parse(p).unwrap()
    }

    #[test]
    fn a_glob_matches_what_it_reads() {
        let org = pattern("https://github.com/evil-org/*");
        assert!(org.matches(&repo("https://github.com/evil-org/x")));
        assert!(org.matches(&repo("https://github.com/Evil-Org/x.git")));
        assert!(!org.matches(&repo("https://github.com/evil-org2/x")));
        assert!(!org.matches(&repo("https://gitlab.com/evil-org/x")));
        let one = pattern("https://github.com/a/miner.git");
        assert!(one.matches(&repo("https://github.com/a/miner")));
        assert!(one.matches(&repo("https://github.com/A/Miner/")));
        assert!(!one.matches(&repo("https://github.com/a/miner2")));
        let anywhere = pattern("https://*/*crypto*");
        assert!(anywhere.matches(&repo("https://git.example.org/x/my-crypto-miner")));
        assert!(!anywhere.matches(&repo("https://git.example.org/x/y")));
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = pattern(&format!("https://{}b", "*a".repeat(50)));
        let r = repo(&format!("https://github.com/{}", "a".repeat(200)));
        assert!(!p.matches(&r));
    }

    #[test]
    fn patterns_that_are_not_urls_are_refused() {
        for bad in [
            "github.com/a/*",
            "^https://github.com/a/.*$",
            "https://github.com/a b",
        ] {
            assert!(RepoPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_hosts_and_bans_say_why() {
        let hosts = vec!["github.com".to_owned()];
        assert!(check(&repo("https://github.com/a/b"), &hosts, &[]).is_ok());
        let e = check(&repo("https://gitlab.com/a/b"), &hosts, &[]).unwrap_err();
        assert!(
            e.contains("from github.com only, not from gitlab.com"),
            "{e}"
        );
        assert!(check(&repo("https://gitlab.com/a/b"), &[], &[]).is_ok());
        let banned = [pattern("https://github.com/a/*")];
        let e = check(&repo("https://github.com/a/b"), &[], &banned).unwrap_err();
        assert!(e.contains("banned"), "{e}");
    }
}
