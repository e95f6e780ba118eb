//! Plugins' key-value namespaces in PostgreSQL: one row per (plugin, key)
//! and one usage row per plugin, changed together. Writes to one plugin's
//! namespace take the usage row's lock, so a quota holds across hosts.

use async_trait::async_trait;
use junction_core::kv::{KvOutcome, KvUsage, KvWrite, validate_kv};

use super::{Postgres, Prepared, big, unbig};
use crate::StoreError;

/// Applies one write inside `txn`; a refused write changes nothing (the
/// caller decides whether to commit, so a journal batch goes on).
pub(super) async fn apply_in(
    txn: &deadpool_postgres::Transaction<'_>,
    write: &KvWrite,
) -> Result<KvOutcome, StoreError> {
    let (plugin, key) = match write {
        KvWrite::Set { plugin, key, .. } | KvWrite::Delete { plugin, key } => (plugin, key),
    };
    if let KvWrite::Set { value, .. } = write
        && let Err(invalid) = validate_kv(key, value)
    {
        return Ok(KvOutcome::Refused(invalid.to_string()));
    }
    txn.run(
        "INSERT INTO kv_usage (plugin, bytes, keys) VALUES ($1, 0, 0) ON CONFLICT (plugin) DO NOTHING",
        &[plugin],
    )
    .await?;
    let usage = txn
        .row(
            "SELECT bytes, keys FROM kv_usage WHERE plugin = $1 FOR UPDATE",
            &[plugin],
        )
        .await?;
    let used = KvUsage {
        bytes: unbig(usage.get(0)),
        keys: unbig(usage.get(1)),
    };
    let old: Option<u64> = txn
        .maybe_row(
            "SELECT octet_length(value) FROM kv WHERE plugin = $1 AND key = $2",
            &[plugin, key],
        )
        .await?
        .map(|row| (key.len() as u64) + u64::from(row.get::<_, i32>(0).unsigned_abs()));
    let after = match write {
        KvWrite::Set { value, quota, .. } => {
            let new = (key.len() + value.len()) as u64;
            let bytes = used.bytes - old.unwrap_or(0).min(used.bytes) + new;
            let keys = used.keys + u64::from(old.is_none());
            if keys > quota.keys {
                return Ok(KvOutcome::Refused(format!(
                    "kv quota: plugin `{plugin}` may keep {} keys and has {}; delete some or raise limits.kv-keys in the manifest",
                    quota.keys, used.keys
                )));
            }
            if bytes > quota.bytes {
                return Ok(KvOutcome::Refused(format!(
                    "kv quota: plugin `{plugin}` may keep {} bytes and this write would make {bytes}; delete some or raise limits.kv-mb in the manifest",
                    quota.bytes
                )));
            }
            txn.run(
                "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (plugin, key) DO UPDATE SET value = EXCLUDED.value",
                &[plugin, key, value],
            )
            .await?;
            KvUsage { bytes, keys }
        }
        KvWrite::Delete { .. } => {
            let Some(old) = old else {
                return Ok(KvOutcome::Written);
            };
            txn.run(
                "DELETE FROM kv WHERE plugin = $1 AND key = $2",
                &[plugin, key],
            )
            .await?;
            KvUsage {
                bytes: used.bytes.saturating_sub(old),
                keys: used.keys.saturating_sub(1),
            }
        }
    };
    txn.run(
        "UPDATE kv_usage SET bytes = $2, keys = $3 WHERE plugin = $1",
        &[plugin, &big(after.bytes), &big(after.keys)],
    )
    .await?;
    Ok(KvOutcome::Written)
}

/// Drops `plugin`'s namespace inside `txn`.
pub(super) async fn forget_in(
    txn: &deadpool_postgres::Transaction<'_>,
    plugin: &str,
) -> Result<(), StoreError> {
    txn.run("DELETE FROM kv WHERE plugin = $1", &[&plugin])
        .await?;
    txn.run("DELETE FROM kv_usage WHERE plugin = $1", &[&plugin])
        .await?;
    Ok(())
}

#[async_trait]
impl crate::kv::KvRows for Postgres {
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
                &[&plugin, &key],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn kv_write(&self, write: &KvWrite) -> Result<KvOutcome, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let outcome = apply_in(&txn, write).await?;
        if outcome == KvOutcome::Written {
            txn.commit().await?;
        }
        Ok(outcome)
    }

    async fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT bytes, keys FROM kv_usage WHERE plugin = $1",
                &[&plugin],
            )
            .await?;
        Ok(row.map_or_else(KvUsage::default, |row| KvUsage {
            bytes: unbig(row.get(0)),
            keys: unbig(row.get(1)),
        }))
    }

    async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows(
                "SELECT key FROM kv WHERE plugin = $1 AND starts_with(key, $2) ORDER BY key",
                &[&plugin, &prefix],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}
