//! Which backend a store URL names: `redb:` (the redb file in the data
//! directory, the default) or `redb:/some/dir` (the redb file in that
//! directory). Given as `--store` or `JUNCTION_STORE`.

use std::path::PathBuf;
use std::str::FromStr;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// redb, in `path` or else in the data directory.
    Redb { path: Option<PathBuf> },
}

impl Default for StoreUrl {
    fn default() -> Self {
        StoreUrl::Redb { path: None }
    }
}

/// A store URL that names no backend this build has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    #[error("the store URL is empty; use `redb:` (the default) or `redb:/path/to/dir`")]
    Empty,
    #[error(
        "unknown store `{scheme}:`; this build stores in `redb:` (optionally `redb:/path/to/dir`)"
    )]
    UnknownScheme { scheme: String },
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
    fn other_urls_are_refused_with_what_is_wrong() {
        assert_eq!(
            "postgres://localhost/junction".parse::<StoreUrl>(),
            Err(StoreUrlError::UnknownScheme {
                scheme: "postgres".into()
            })
        );
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
