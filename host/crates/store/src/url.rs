//! Which backend a store URL names: `redb:` (the redb file in the data
//! directory, the default), `redb:/some/dir` (the redb file in that
//! directory) or `postgres://user:password@host:port/database` (a
//! PostgreSQL database several hosts share). Given as `--store` or
//! `JUNCTION_STORE`. A PostgreSQL URL prints without its password.

use std::path::PathBuf;
use std::str::FromStr;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// redb, in `path` or else in the data directory.
    Redb { path: Option<PathBuf> },
    /// A PostgreSQL database.
    Postgres(Box<PostgresUrl>),
}

/// A PostgreSQL connection URL, checked when parsed. It prints (and
/// debug-prints) with the password replaced by `***`.
#[derive(Clone)]
pub struct PostgresUrl {
    url: url::Url,
    config: tokio_postgres::Config,
}

impl PostgresUrl {
    /// The driver's connection settings.
    pub fn config(&self) -> tokio_postgres::Config {
        self.config.clone()
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, database: &str) -> PostgresUrl {
        let mut url = self.url.clone();
        url.set_path(database);
        let mut config = self.config.clone();
        config.dbname(database);
        PostgresUrl { url, config }
    }

    fn redacted(&self) -> url::Url {
        let mut url = self.url.clone();
        if url.password().is_some() {
            // Only fails for URLs that cannot have credentials, which
            // this one has.
            let _ = url.set_password(Some("***"));
        }
        url
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for PostgresUrl {}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUrl({})", self.redacted())
    }
}

impl FromStr for PostgresUrl {
    type Err = StoreUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| StoreUrlError::InvalidPostgres { reason };
        let url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid(format!("the scheme is `{}:`", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it names no host".into()));
        }
        // The driver's own parser decides what it accepts; its message
        // never repeats the password.
        let config: tokio_postgres::Config = text
            .parse()
            .map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
        Ok(PostgresUrl { url, config })
    }
}

impl Default for StoreUrl {
    fn default() -> Self {
        StoreUrl::Redb { path: None }
    }
}

/// A store URL that names no backend this build has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    #[error(
        "the store URL is empty; use `redb:` (the default), `redb:/path/to/dir` or `postgres://user:password@host:port/database`"
    )]
    Empty,
    #[error(
        "unknown store `{scheme}:`; this build stores in `redb:` (optionally `redb:/path/to/dir`) or `postgres://user:password@host:port/database`"
    )]
    UnknownScheme { scheme: String },
    #[error("the PostgreSQL URL is not valid: {reason}")]
    InvalidPostgres { reason: String },
    #[error("`{url}` has no scheme; write `redb:{url}` for a redb file in that directory")]
    NoScheme { url: String },
    #[error("the redb path in `{url}` must be absolute (`redb:/path/to/dir`)")]
    RelativePath { url: String },
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        if url.is_empty() {
            return Err(StoreUrlError::Empty);
        }
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(StoreUrlError::NoScheme { url: url.into() });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redb" => {
                // `redb://` + an absolute path is accepted as well as `redb:/path`.
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Ok(StoreUrl::Redb { path: None });
                }
                if !path.starts_with('/') {
                    return Err(StoreUrlError::RelativePath { url: url.into() });
                }
                Ok(StoreUrl::Redb {
                    path: Some(PathBuf::from(path)),
                })
            }
            "postgres" | "postgresql" => url.parse().map(|url| StoreUrl::Postgres(Box::new(url))),
            other => Err(StoreUrlError::UnknownScheme {
                scheme: other.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Redb { path: None } => write!(f, "redb:"),
            StoreUrl::Redb { path: Some(path) } => write!(f, "redb:{}", path.display()),
            StoreUrl::Postgres(url) => url.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_urls_parse_and_print_back() {
        assert_eq!("redb:".parse(), Ok(StoreUrl::Redb { path: None }));
        let dir = StoreUrl::Redb {
            path: Some("/var/lib/junction".into()),
        };
        assert_eq!("redb:/var/lib/junction".parse(), Ok(dir.clone()));
        assert_eq!("redb:///var/lib/junction".parse(), Ok(dir.clone()));
        assert_eq!(dir.to_string(), "redb:/var/lib/junction");
    }

    #[test]
    fn postgres_urls_parse_and_never_print_their_password() {
        let text = "postgres://junction:s3cret-pw@db.internal:5433/junction?connect_timeout=5";
        let StoreUrl::Postgres(url) = text.parse().unwrap() else {
            panic!("a postgres URL")
        };
        assert_eq!(url.config().get_dbname(), Some("junction"));
        assert_eq!(url.config().get_ports(), [5433]);
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            StoreUrl::Postgres(url.clone()).to_string(),
        ] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(shown.contains("db.internal:5433"), "{shown}");
        }
        assert_eq!(
            url.with_database("other").config().get_dbname(),
            Some("other")
        );
        assert!(matches!(
            "postgresql://h/db".parse::<StoreUrl>(),
            Ok(StoreUrl::Postgres(_))
        ));
    }

    #[test]
    fn other_urls_are_refused_with_what_is_wrong() {
        assert_eq!(
            "mysql://localhost/junction".parse::<StoreUrl>(),
            Err(StoreUrlError::UnknownScheme {
                scheme: "mysql".into()
            })
        );
        assert!(matches!(
            "postgres:///no-host".parse::<StoreUrl>(),
            Err(StoreUrlError::InvalidPostgres { .. })
        ));
        assert!(matches!(
            "postgres://h/db?no_such_option=1".parse::<StoreUrl>(),
            Err(StoreUrlError::InvalidPostgres { .. })
        ));
        assert_eq!(
            "redb:relative".parse::<StoreUrl>(),
            Err(StoreUrlError::RelativePath {
                url: "redb:relative".into()
            })
        );
        assert!(matches!(
            "/x".parse::<StoreUrl>(),
            Err(StoreUrlError::NoScheme { .. })
        ));
        assert_eq!("  ".parse::<StoreUrl>(), Err(StoreUrlError::Empty));
    }
}
