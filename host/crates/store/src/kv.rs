//! Each plugin's private key-value namespace and what it uses of its quota.
//! A backend keeps the usage beside the data and changes both in one
//! transaction, so a quota is checked without a scan.

use async_trait::async_trait;

use crate::StoreError;
use junction_core::kv::{KvOutcome, KvUsage, KvWrite};

/// Plugins' key-value namespaces.
#[async_trait]
pub trait KvRows: Send + Sync {
    /// The value under `key` in `plugin`'s namespace.
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies one write, checking it and the quota it carries: a refused
    /// write is an answer, not an error.
    async fn kv_write(&self, write: &KvWrite) -> Result<KvOutcome, StoreError>;
    /// What `plugin` holds.
    async fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError>;
    /// The keys of `plugin` starting with `prefix`, sorted.
    async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError>;
}
