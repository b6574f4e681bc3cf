use super::{GitRef, Ide, ProfileName, RepoSpec, UrlPath};
use serde::Deserialize;

/// What a user asks to launch, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub repo: RepoSpec,
    pub git_ref: GitRef,
    pub url_path: UrlPath,
    /// The launch profile asked for; whether the user may have it is
    /// `access::profiles`' to say. `None`: the default (or no profiles).
    pub profile: Option<ProfileName>,
    /// The interface asked for; `url_path` is its path then.
    pub ide: Option<Ide>,
}

/// The raw launch parameters as they arrive in a query string or a form:
/// `giturl`, `ref`, `urlpath`, and Binder's `labpath` / `filepath`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchParams {
    pub giturl: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub urlpath: Option<String>,
    pub labpath: Option<String>,
    pub filepath: Option<String>,
    /// A launch profile by name (`[[profiles]]`).
    pub profile: Option<String>,
    /// An interface by name (`Ide`), instead of a path.
    pub ide: Option<String>,
}

impl LaunchParams {
    /// Validate every field; `default_repo` fills in a missing `giturl`.
    pub fn validate(&self, default_repo: &RepoSpec) -> Result<LaunchRequest, String> {
        let repo = match self.giturl.as_deref().map(str::trim) {
            None | Some("") => default_repo.clone(),
            Some(url) => RepoSpec::parse(url)?,
        };
        let git_ref = GitRef::parse(self.git_ref.as_deref().unwrap_or(""))?;
        let ide = non_empty(&self.ide).map(Ide::parse).transpose()?;
        let url_path = match (
            non_empty(&self.urlpath),
            non_empty(&self.labpath),
            non_empty(&self.filepath),
            ide,
        ) {
            (Some(p), None, None, None) => UrlPath::parse(p)?,
            (None, Some(p), None, None) => UrlPath::lab_file(p)?,
            (None, None, Some(p), None) => UrlPath::file(p)?,
            (None, None, None, Some(ide)) => ide.url_path(),
            (None, None, None, None) => UrlPath::default(),
            (_, _, _, Some(_)) => {
                return Err(
                    "give either an interface (ide) or a path to open (urlpath, labpath, filepath), not both"
                        .into(),
                );
            }
            _ => return Err("give only one of urlpath, labpath and filepath".into()),
        };
        let profile = non_empty(&self.profile)
            .map(ProfileName::parse)
            .transpose()?;
        Ok(LaunchRequest {
            repo,
            git_ref,
            url_path,
            profile,
            ide,
        })
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_repo() -> RepoSpec {
        RepoSpec::parse("https://github.com/default/repo").unwrap()
    }

    #[test]
    fn a_missing_giturl_launches_the_default_repository() {
        let req = LaunchParams::default().validate(&default_repo()).unwrap();
        assert_eq!(req.repo, default_repo());
        assert_eq!(req.git_ref, GitRef::head());
    }

    #[test]
    fn labpath_becomes_a_lab_url() {
        let params = LaunchParams {
            labpath: Some("index.ipynb".into()),
            ..Default::default()
        };
        assert_eq!(
            params.validate(&default_repo()).unwrap().url_path.as_str(),
            "lab/tree/index.ipynb"
        );
    }

    #[test]
    fn an_ide_becomes_its_path_and_goes_with_no_other_path() {
        let params = LaunchParams {
            ide: Some("rstudio".into()),
            ..Default::default()
        };
        let request = params.validate(&default_repo()).unwrap();
        assert_eq!(request.url_path.as_str(), "rstudio");
        assert_eq!(request.ide, Some(Ide::Rstudio));
        let both = LaunchParams {
            urlpath: Some("lab".into()),
            ..params.clone()
        };
        assert!(
            both.validate(&default_repo())
                .unwrap_err()
                .contains("not both")
        );
        let unknown = LaunchParams {
            ide: Some("emacs".into()),
            ..Default::default()
        };
        assert!(unknown.validate(&default_repo()).is_err());
    }

    #[test]
    fn two_paths_at_once_are_refused() {
        let params = LaunchParams {
            urlpath: Some("lab".into()),
            filepath: Some("x".into()),
            ..Default::default()
        };
        assert!(params.validate(&default_repo()).is_err());
    }
}
