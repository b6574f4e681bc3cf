use serde::Serialize;
use std::fmt;

/// The path to open in Jupyter once it runs (`lab`, `lab/tree/index.ipynb`,
/// `voila/render/app.ipynb`). Always relative to the server root: no scheme,
/// no host, no `..`, no query, so the link we build cannot point elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct UrlPath(String);

impl UrlPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().trim_start_matches('/');
        if s.len() > 300 {
            return Err("the path to open is longer than 300 characters".into());
        }
        if let Some(c) = s.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '/' | '-' | '~' | '%' | '+' | '@' | ','))
        }) {
            return Err(format!(
                "the path to open contains {c:?}: use letters, digits and . _ / - ~ % + @ , only"
            ));
        }
        if s.contains("//") {
            return Err("the path to open cannot contain //".into());
        }
        if s.split('/').any(|seg| seg == "..") {
            return Err("the path to open cannot contain ..".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Binder's `labpath`: a file to open in JupyterLab.
    pub fn lab_file(file: &str) -> Result<Self, String> {
        Self::parse(&format!("lab/tree/{}", file.trim().trim_start_matches('/')))
    }

    /// Binder's `filepath`: a file to open, whatever the interface.
    pub fn file(file: &str) -> Result<Self, String> {
        Self::parse(&format!("tree/{}", file.trim().trim_start_matches('/')))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UrlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

super::text_column::stored_as_text!(UrlPath, UrlPath::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jupyter_paths_are_accepted_and_made_relative() {
        assert_eq!(
            UrlPath::parse("/lab/tree/index.ipynb").unwrap().as_str(),
            "lab/tree/index.ipynb"
        );
        assert_eq!(UrlPath::parse("").unwrap().as_str(), "");
        assert_eq!(
            UrlPath::lab_file("notebooks/a b.ipynb").map(|_| ()),
            Err(
                "the path to open contains ' ': use letters, digits and . _ / - ~ % + @ , only"
                    .into()
            )
        );
        assert_eq!(
            UrlPath::lab_file("a%20b.ipynb").unwrap().as_str(),
            "lab/tree/a%20b.ipynb"
        );
        assert_eq!(UrlPath::file("x.ipynb").unwrap().as_str(), "tree/x.ipynb");
    }

    #[test]
    fn a_leading_double_slash_cannot_name_another_host() {
        let p = UrlPath::parse("//evil.example/x").unwrap();
        let base = url::Url::parse("http://10.0.0.5:8888/").unwrap();
        assert_eq!(base.join(p.as_str()).unwrap().host_str(), Some("10.0.0.5"));
    }

    #[test]
    fn paths_that_could_leave_the_server_are_rejected() {
        for bad in [
            "lab//x",
            "https://evil.example",
            "../../etc/passwd",
            "a/../b",
            "lab?token=x",
            "lab#x",
            "a\"b",
            "<script>",
            "a;b",
            "$(id)",
            "a\nb",
        ] {
            assert!(UrlPath::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
