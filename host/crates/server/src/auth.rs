//! Admin authentication: one 256-bit admin token, created on first start,
//! kept only as its sha256 in the store and in full in the data directory's
//! `admin-token` file (0600) for the CLI. Every `/v1` route checks
//! `Authorization: Bearer <token>` in constant time.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::api_keys::{self, Caller};
use super::error::ApiError;
use junction_store::{Store, StoreError};

/// The token file in the data directory.
pub const TOKEN_FILE: &str = "admin-token";
/// Every admin token starts with this, so it is recognisable in a leak scan.
const TOKEN_PREFIX: &str = "jct_";

/// Why the admin token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the admin token to {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the stored admin token hash is corrupt")]
    CorruptHash,
}

/// The admin token's hash, shared by the middleware and `token rotate`.
#[derive(Clone)]
pub struct AdminAuth {
    hash: Arc<RwLock<[u8; 32]>>,
}

/// A new random token: `jct_` and 256 bits in base64url.
fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hash(hex_hash: &str) -> Result<[u8; 32], AuthError> {
    hex::decode(hex_hash)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(AuthError::CorruptHash)
}

/// The token file's path in `data_dir`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Writes the token 0600, replacing the file atomically.
fn write_token_file(data_dir: &Path, token: &str) -> Result<(), AuthError> {
    let path = token_path(data_dir);
    let temp = data_dir.join(format!(".{TOKEN_FILE}.tmp"));
    let io = |source| AuthError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io)?;
    file.write_all(token.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)?;
    Ok(())
}

/// [`write_token_file`] into the store's data directory, off the async workers.
async fn write_token_file_async(store: &Store, token: &str) -> Result<(), AuthError> {
    let (dir, written) = (store.data_dir().to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || write_token_file(&dir, &written))
        .await
        .map_err(|source| AuthError::TokenFile {
            path: token_path(store.data_dir()).display().to_string(),
            source: std::io::Error::other(source),
        })?
}

impl AdminAuth {
    /// Loads the token hash from the store, issuing a token on first start.
    /// Returns the new token when one was issued, so it can be shown once.
    pub async fn load_or_issue(store: &Store) -> Result<(Self, Option<String>), AuthError> {
        match store.admin_token_hash().await? {
            Some(hex_hash) => {
                let hash = parse_hash(&hex_hash)?;
                Ok((
                    AdminAuth {
                        hash: Arc::new(RwLock::new(hash)),
                    },
                    None,
                ))
            }
            None => {
                // Hosts starting together on a new shared store each make
                // a token; the first stored is the token, the others read it.
                // The file first: a token stored but never written down
                // would lock everyone out.
                let token = generate_token();
                let hash = digest(&token);
                write_token_file_async(store, &token).await?;
                if !store.add_admin_token_hash(&hex::encode(hash)).await? {
                    let lost = token_path(store.data_dir());
                    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(lost)).await;
                    let stored = store
                        .admin_token_hash()
                        .await?
                        .ok_or(AuthError::CorruptHash)?;
                    return Ok((
                        AdminAuth {
                            hash: Arc::new(RwLock::new(parse_hash(&stored)?)),
                        },
                        None,
                    ));
                }
                Ok((
                    AdminAuth {
                        hash: Arc::new(RwLock::new(hash)),
                    },
                    Some(token),
                ))
            }
        }
    }

    /// Reads the token hash from the store again, after another host
    /// sharing it rotated the token. Whether it changed.
    pub async fn reload(&self, store: &Store) -> Result<bool, AuthError> {
        let Some(hex_hash) = store.admin_token_hash().await? else {
            return Ok(false);
        };
        let hash = parse_hash(&hex_hash)?;
        let Ok(mut current) = self.hash.write() else {
            return Ok(false);
        };
        let changed = *current != hash;
        *current = hash;
        Ok(changed)
    }

    /// Issues a new token: stores its hash, writes the token file, and makes
    /// the old token stop working. Returns the new token.
    pub async fn rotate(&self, store: &Store) -> Result<String, AuthError> {
        let token = generate_token();
        let hash = digest(&token);
        // The file first: if storing the hash fails, the old token still
        // works and the next rotation overwrites the file again.
        write_token_file_async(store, &token).await?;
        store.set_admin_token_hash(&hex::encode(hash)).await?;
        if let Ok(mut current) = self.hash.write() {
            *current = hash;
        }
        Ok(token)
    }

    /// Whether `presented` is the admin token, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let presented = digest(presented);
        match self.hash.read() {
            Ok(current) => bool::from(current.ct_eq(&presented)),
            Err(_) => false,
        }
    }
}

/// The one `/v1` route an API key may call (MCP at `/mcp` is the other).
const KEY_ROUTE: &str = "/v1/plugins/{name}/invoke";

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned())
}

/// Who `headers` say the caller is: the admin token or a valid API key in
/// `Authorization: Bearer …`; `missing` is the answer when there is none.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    missing: &str,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        None => Err(unauthorized(missing)),
        Some(token) if api_keys::looks_like_key(token) => {
            match api_keys::find(state, token).await? {
                Some(key) => Ok(Caller::Key(key)),
                None => Err(unauthorized(
                    "the API key is not valid (revoked, or never issued)",
                )),
            }
        }
        Some(token) if state.auth.verify(token) => Ok(Caller::Admin),
        Some(_) => Err(unauthorized("the admin token is not valid")),
    }
}

/// Middleware: 401 unless the request carries the admin token or, on the
/// invoke route, an API key; the request then carries its [`Caller`].
pub(crate) async fn require_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = caller(
        &state,
        request.headers(),
        "this endpoint needs `Authorization: Bearer <admin token>`; the token is in the data directory's admin-token file",
    )
    .await?;
    if matches!(caller, Caller::Key(_)) {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        if route != Some(KEY_ROUTE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an API key may only invoke the plugins it names; this endpoint needs the admin token",
            ));
        }
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn issues_once_verifies_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let (auth, token) = AdminAuth::load_or_issue(&store).await.unwrap();
        let token = token.expect("first start issues a token");
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() > 40);
        assert!(auth.verify(&token));
        assert!(!auth.verify("jct_wrong"));
        let file = token_path(dir.path());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let stored = store.admin_token_hash().await.unwrap().unwrap();
        assert!(!stored.contains(&token), "only the hash is stored");

        let (again, none) = AdminAuth::load_or_issue(&store).await.unwrap();
        assert!(none.is_none(), "printed once, on first start only");
        assert!(again.verify(&token));

        let rotated = again.rotate(&store).await.unwrap();
        assert!(again.verify(&rotated));
        assert!(!again.verify(&token));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), rotated);
    }
}
