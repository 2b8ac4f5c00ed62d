//! Where a host keeps its state, as the command line names it: `sqlite:PATH`
//! (one file, the embedded default) or `postgres://…` (many host nodes).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// Connections a PostgreSQL store opened from a URL keeps.
pub const POSTGRES_POOL: u32 = 8;

/// A database named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its connection URL.
    Postgres(String),
}

/// A database name that is neither `sqlite:PATH` nor `postgres://…`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown database {0:?}: expected sqlite:PATH or postgres://USER:PASSWORD@HOST/DB")]
pub struct BadDatabase(pub String);

impl FromStr for Database {
    type Err = BadDatabase;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sqlite:")
            && !path.is_empty()
        {
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Database::Postgres(text.to_owned()));
        }
        Err(BadDatabase(text.to_owned()))
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            // The URL may carry a password: only its host part is shown.
            Database::Postgres(url) => {
                let host = url.rsplit('@').next().unwrap_or(url);
                write!(f, "postgres://…@{host}")
            }
        }
    }
}

impl Database {
    /// Open the store, applying the migrations it lacks.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
            Database::Postgres(url) => Arc::new(PostgresStore::open(url, POSTGRES_POOL)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_passwords_stay_hidden() {
        assert_eq!(
            "sqlite:state.db".parse(),
            Ok(Database::Sqlite("state.db".into()))
        );
        let postgres: Database = "postgres://u:secret@db:5432/x".parse().unwrap();
        assert_eq!(postgres.to_string(), "postgres://…@db:5432/x");
        for bad in ["sqlite:", "state.db", "mysql://x", ""] {
            assert!(bad.parse::<Database>().is_err(), "{bad}");
        }
    }
}
