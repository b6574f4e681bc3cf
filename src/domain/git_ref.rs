use serde::Serialize;
use std::fmt;

/// A branch, tag or commit, restricted to the characters git refs use in
/// practice, so that it can never be mistaken for an option or a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitRef(String);

impl GitRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(Self::head());
        }
        if s.len() > 200 {
            return Err("the git ref is longer than 200 characters".into());
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | '+')))
        {
            return Err(format!(
                "the git ref contains {c:?}: use letters, digits and . _ / - + only"
            ));
        }
        if s.starts_with(['-', '/', '.']) {
            return Err("the git ref cannot start with -, / or .".into());
        }
        if s.ends_with(['/', '.']) || s.ends_with(".lock") {
            return Err("the git ref cannot end with /, . or .lock".into());
        }
        if s.contains("..") || s.contains("//") || s.contains("/.") {
            return Err("the git ref cannot contain .., // or /.".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The default branch of the repository.
    pub fn head() -> Self {
        Self("HEAD".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::text_column::stored_as_text!(GitRef, GitRef::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_tags_and_commits_are_accepted() {
        for ok in [
            "main",
            "v1.2.3",
            "feature/x_y",
            "0123abcd",
            "HEAD",
            "release-2024+1",
        ] {
            assert_eq!(GitRef::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn an_empty_ref_means_the_default_branch() {
        assert_eq!(GitRef::parse("  ").unwrap(), GitRef::head());
    }

    #[test]
    fn refs_that_look_like_options_or_commands_are_rejected() {
        for bad in [
            "--upload-pack=x",
            "-b",
            "a;b",
            "$(id)",
            "`id`",
            "a b",
            "a\nb",
            "a'b",
            "a\"b",
            "../x",
            "a..b",
            "x.lock",
            "a//b",
            "/abs",
            "a/",
            "@{-1}",
            "~1",
            "a^",
            "x:y",
        ] {
            assert!(GitRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(GitRef::parse(&"a".repeat(201)).is_err());
    }
}
