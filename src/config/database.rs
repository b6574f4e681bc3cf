//! `[database]`: the store, a SQLite file (the default) or a PostgreSQL
//! database shared by replicas.

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user@host/database`
    pub url: String,
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.starts_with("sqlite:") && !crate::store::is_postgres_url(&self.url) {
            return Err(ConfigError::new(
                "database.url",
                format!("{:?} is neither a SQLite nor a PostgreSQL URL", self.url),
                "use sqlite://path/to/stackbinder.db or postgres://user@host/database",
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
    fn the_database_is_a_sqlite_or_postgres_url() {
        assert_eq!(
            load_str("").unwrap().database.url,
            "sqlite://stackbinder.db"
        );
        let pg = load_str("[database]\nurl = \"postgres://db/stackbinder\"").unwrap();
        assert_eq!(pg.database.url, "postgres://db/stackbinder");
        let e = load_str("[database]\nurl = \"mysql://db/stackbinder\"").unwrap_err();
        assert_eq!(e.key, "database.url");
        assert!(e.fix.contains("sqlite://"), "{e}");
    }
}
