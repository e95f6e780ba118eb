//! API keys in PostgreSQL: one row per key under the sha256 of its secret,
//! its id unique beside it.

use async_trait::async_trait;

use super::{Postgres, Prepared, big, decode};
use crate::StoreError;
use crate::api_keys::{ApiKey, ApiKeyRows};
use crate::encoded::encode;

#[async_trait]
impl ApiKeyRows for Postgres {
    async fn put_api_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let doc = encode("api_keys", key)?;
        let client = self.client().await?;
        client
            .run(
                "INSERT INTO api_keys (hash, id, created_at_ms, doc) VALUES ($1, $2, $3, $4)",
                &[&hash, &key.id, &big(key.created_at_ms), &doc],
            )
            .await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM api_keys WHERE hash = $1", &[&hash])
            .await?;
        row.map(|row| decode("api_keys", row.get(0))).transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows("SELECT doc FROM api_keys ORDER BY created_at_ms, id", &[])
            .await?;
        rows.iter()
            .map(|row| decode("api_keys", row.get(0)))
            .collect()
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .run("DELETE FROM api_keys WHERE id = $1", &[&id])
            .await?
            > 0)
    }
}
