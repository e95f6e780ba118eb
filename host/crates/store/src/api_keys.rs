//! API keys for apps and agents: each may invoke a set of plugins (and,
//! later, call them as MCP tools), never administer. Only a key's sha256
//! is stored, under which it is found; its id names it for listing and
//! revoking.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// An API key as stored and listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Names the key for listing and revoking (`key_…`).
    pub id: String,
    /// What the key is for, in the issuer's words.
    pub name: String,
    /// The end user the key acts for, when it is scoped to one.
    pub end_user: Option<String>,
    /// The plugins it may invoke.
    pub plugins: Vec<String>,
    /// When it was issued.
    pub created_at_ms: u64,
}

/// Issued API keys.
#[async_trait]
pub trait ApiKeyRows: Send + Sync {
    /// Stores a new key under the sha256 (hex) of its secret.
    async fn put_api_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError>;
    /// The key whose secret has sha256 `hash`.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes the key `id`; whether there was one.
    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError>;
}
