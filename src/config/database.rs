//! `[database]`: where the SQLite database lives.

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db`
    pub url: String,
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("sqlite:") {
            return Err(ConfigError::new(
                "database.url",
                format!("{:?} is not a SQLite URL", self.url),
                "use sqlite://path/to/stackbinder.db",
            ));
        }
        Ok(())
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://stackbinder.db".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_str;

    #[test]
    fn the_database_is_a_sqlite_url() {
        assert_eq!(
            load_str("").unwrap().database.url,
            "sqlite://stackbinder.db"
        );
        let e = load_str("[database]\nurl = \"postgres://db/stackbinder\"").unwrap_err();
        assert_eq!(e.key, "database.url");
        assert!(e.fix.contains("sqlite://"), "{e}");
    }
}
