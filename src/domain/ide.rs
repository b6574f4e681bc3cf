use super::UrlPath;
use serde::Serialize;
use std::fmt;

/// The interface a launch opens (`?ide=`): each is a path of the VM's
/// Jupyter server, JupyterLab's and the classic Notebook's own, the others
/// entries of jupyter-server-proxy that the repository's environment may
/// or may not install (jupyter-rsession-proxy, jupyter-vscode-proxy,
/// jupyter-remote-desktop-proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ide {
    Lab,
    Notebook,
    Rstudio,
    Vscode,
    Desktop,
}

impl Ide {
    /// Every interface, JupyterLab (the default) first.
    pub const ALL: [Ide; 5] = [
        Self::Lab,
        Self::Notebook,
        Self::Rstudio,
        Self::Vscode,
        Self::Desktop,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|ide| ide.as_str() == raw.trim())
            .ok_or_else(|| {
                format!(
                    "{:?} is not an interface this server opens: use one of {}",
                    raw.trim(),
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }

    /// Its name in a launch link and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lab => "lab",
            Self::Notebook => "notebook",
            Self::Rstudio => "rstudio",
            Self::Vscode => "vscode",
            Self::Desktop => "desktop",
        }
    }

    /// Its path under the Jupyter server's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Lab => "lab",
            Self::Notebook => "tree",
            Self::Rstudio => "rstudio",
            Self::Vscode => "vscode",
            Self::Desktop => "desktop",
        }
    }

    /// What the pages call it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Lab => "JupyterLab",
            Self::Notebook => "Classic Notebook",
            Self::Rstudio => "RStudio",
            Self::Vscode => "VS Code",
            Self::Desktop => "Linux desktop",
        }
    }

    /// The path a launch of it opens.
    pub fn url_path(self) -> UrlPath {
        UrlPath::parse(self.path()).expect("an interface's path is a valid path")
    }
}

impl fmt::Display for Ide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::text_column::stored_as_text!(Ide, Ide::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_has_its_jupyter_path() {
        let paths: Vec<_> = Ide::ALL.iter().map(|i| i.url_path().to_string()).collect();
        assert_eq!(paths, ["lab", "tree", "rstudio", "vscode", "desktop"]);
        for ide in Ide::ALL {
            assert_eq!(Ide::parse(ide.as_str()), Ok(ide));
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_list() {
        for bad in ["", "emacs", "RStudio", "lab/tree", "../x"] {
            let e = Ide::parse(bad).unwrap_err();
            assert!(e.contains("lab, notebook, rstudio, vscode, desktop"), "{e}");
        }
    }
}
