//! API keys in redb: one JSON row per key under the sha256 of its secret.
//! Revoking by id scans the table, which holds a handful of keys.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::api_keys::{ApiKey, ApiKeyRows};

pub(super) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

fn decode(bytes: &[u8]) -> Result<ApiKey, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("api_keys", e))
}

impl Redb {
    fn put_api_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(key).map_err(|e| corrupt("api_keys", e))?;
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(API_KEYS)
            .map_err(db)?
            .insert(hash, bytes.as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(API_KEYS).map_err(db)?;
        table
            .get(hash)
            .map_err(db)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(API_KEYS).map_err(db)?;
        let mut keys = Vec::new();
        for row in table.iter().map_err(db)? {
            let (_, value) = row.map_err(db)?;
            keys.push(decode(value.value())?);
        }
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(keys)
    }

    fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let found = {
            let mut table = txn.open_table(API_KEYS).map_err(db)?;
            let mut hash = None;
            for row in table.iter().map_err(db)? {
                let (k, v) = row.map_err(db)?;
                if decode(v.value())?.id == id {
                    hash = Some(k.value().to_owned());
                    break;
                }
            }
            match hash {
                Some(hash) => {
                    table.remove(hash.as_str()).map_err(db)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(db)?;
        Ok(found)
    }
}

#[async_trait]
impl ApiKeyRows for RedbBackend {
    async fn put_api_key(&self, hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        let (hash, key) = (hash.to_owned(), key.clone());
        self.run(move |redb| redb.put_api_key(&hash, &key)).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash.to_owned();
        self.run(move |redb| redb.api_key_by_hash(&hash)).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.run(|redb| redb.api_keys()).await
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |redb| redb.delete_api_key(&id)).await
    }
}
