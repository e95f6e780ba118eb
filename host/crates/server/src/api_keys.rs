//! API keys for apps and agents (`/v1/api-keys`): the admin issues a key
//! scoped to a set of plugins (and optionally an end user), sees it once,
//! lists keys without their secrets and revokes them. A key authenticates
//! `POST /v1/plugins/{name}/invoke` for its plugins and nothing else; only
//! its sha256 is stored, and it is looked up in the store on each use, so
//! a revocation holds at once on every host.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, stored};
use junction_core::FieldError;
use junction_store::{ApiKey, now_ms, validate_plugin_name};

/// Every API key starts with this, so a leaked one is recognisable and
/// never mistaken for the admin token (`jct_`).
pub const KEY_PREFIX: &str = "jck_";
/// Longest key name.
const MAX_NAME: usize = 100;
/// Most plugins one key may name.
const MAX_PLUGINS: usize = 100;

/// The header an app's key (one without an end user of its own) names
/// the end user of an MCP session with.
pub const END_USER_HEADER: &str = "junction-end-user";

/// Who a request to `/v1` comes from (a request extension).
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin token.
    Admin,
    /// An API key.
    Key(ApiKey),
}

impl Caller {
    /// The end user a call runs for, given the one it names: a key scoped
    /// to an end user runs as them (naming another is refused); an app's
    /// key and the admin run as whoever they name, or as the organisation.
    pub fn end_user_for(&self, named: Option<String>) -> Result<Option<String>, ApiError> {
        if let Some(user) = &named {
            junction_app::connections::checked_end_user(user)
                .map_err(junction_app::AppError::from)?;
        }
        match self {
            Caller::Key(ApiKey {
                id,
                end_user: Some(own),
                ..
            }) => match named {
                Some(other) if other != *own => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("API key `{id}` acts for its own end user only, not for `{other}`"),
                )),
                _ => Ok(Some(own.clone())),
            },
            Caller::Key(_) | Caller::Admin => Ok(named),
        }
    }
}

/// A key to issue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The end user the key acts for: an id chosen by the embedding app
    /// (1 to 128 characters, no control characters, no surrounding
    /// whitespace); absent for a key of the app itself, which names the
    /// end user per call.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    pub end_user: Option<String>,
    /// The plugins it may invoke (at least one).
    #[schema(min_items = 1, max_items = 100)]
    pub plugins: Vec<String>,
}

/// A key just issued: the only time its secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedApiKey {
    /// The key: send it as `Authorization: Bearer <key>`. Not shown again.
    pub key: String,
    /// The key as it is listed.
    #[serde(flatten)]
    pub listed: ApiKey,
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn check(new: &NewApiKey) -> Result<(), FieldError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(FieldError::quoted(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    if let Some(user) = &new.end_user {
        junction_app::connections::checked_end_user(user)?;
    }
    if new.plugins.is_empty() || new.plugins.len() > MAX_PLUGINS {
        return Err(FieldError::quoted("plugins", "must name 1 to 100 plugins"));
    }
    for plugin in &new.plugins {
        validate_plugin_name(plugin)
            .map_err(|why| FieldError::quoted("plugins", format!("names `{plugin}`: {why}")))?;
    }
    Ok(())
}

/// The key `presented` names, if it is one that was issued and not revoked.
pub(crate) async fn find(state: &AppState, presented: &str) -> Result<Option<ApiKey>, ApiError> {
    let hash = digest(presented);
    let store = state.store.clone();
    stored(async move { store.backend().api_key_by_hash(&hash).await }).await
}

/// Whether a token is shaped like an API key (rather than the admin token).
pub(crate) fn looks_like_key(token: &str) -> bool {
    token.starts_with(KEY_PREFIX)
}

/// Issues an API key.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    request_body(content = NewApiKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued; the key is in this answer only", body = IssuedApiKey),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<IssuedApiKey>), ApiError> {
    Ok((StatusCode::CREATED, Json(issue(&state, new).await?)))
}

/// Issues a key (the route's and the console's work).
pub(crate) async fn issue(state: &AppState, new: NewApiKey) -> Result<IssuedApiKey, ApiError> {
    check(&new).map_err(|field| ApiError::from(junction_app::AppError::Field(field)))?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let mut plugins = new.plugins;
    plugins.sort();
    plugins.dedup();
    let listed = ApiKey {
        id: format!("key_{}", hex::encode(rand::random::<[u8; 8]>())),
        name: new.name.trim().to_owned(),
        end_user: new.end_user,
        plugins,
        created_at_ms: now_ms(),
    };
    let (store, hash, row) = (state.store.clone(), digest(&key), listed.clone());
    stored(async move { store.backend().put_api_key(&hash, &row).await }).await?;
    tracing::info!(key = %listed.id, "API key issued");
    Ok(IssuedApiKey { key, listed })
}

/// Every API key, without its secret.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    responses(
        (status = 200, body = Vec<ApiKey>),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    let store = state.store.clone();
    Ok(Json(
        stored(async move { store.backend().api_keys().await }).await?,
    ))
}

/// Revokes an API key: it stops working at once, on every host.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_api_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (store, key) = (state.store.clone(), id.clone());
    if !stored(async move { store.backend().delete_api_key(&key).await }).await? {
        return Err(ApiError::not_found(format!("no API key with id `{id}`")));
    }
    tracing::info!(key = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
