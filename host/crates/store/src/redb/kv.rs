//! Each plugin's private key-value namespace, and what it uses of its quota.
//! Usage (bytes of keys plus values, and keys) is kept per plugin beside the
//! data and changed in the same transaction as every write, so a quota is
//! checked without scanning; a namespace written before usage was kept is
//! counted once, on its first write. Writes go through [`apply_in`], which
//! the journal calls inside its group commit and `kv_write` inside a
//! transaction of its own.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use async_trait::async_trait;
use junction_core::kv::{KvOutcome, KvUsage, KvWrite, validate_kv};

use super::{Redb, RedbBackend, db};
use crate::StoreError;

/// (plugin, key) → value.
pub(super) const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");
/// Plugin → (bytes, keys) held in its namespace.
pub(super) const KV_USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("kv_usage");

fn usage_in(
    usage: &impl ReadableTable<&'static str, (u64, u64)>,
    data: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    plugin: &str,
) -> Result<KvUsage, StoreError> {
    if let Some(row) = usage.get(plugin).map_err(db)? {
        let (bytes, keys) = row.value();
        return Ok(KvUsage { bytes, keys });
    }
    // A namespace written before usage was kept: count it.
    let mut counted = KvUsage::default();
    for row in data
        .range((plugin, "")..=(plugin, "\u{10FFFF}"))
        .map_err(db)?
    {
        let (key, value) = row.map_err(db)?;
        counted.bytes += (key.value().1.len() + value.value().len()) as u64;
        counted.keys += 1;
    }
    Ok(counted)
}

/// Applies `write` inside `txn`.
pub(super) fn apply_in(
    txn: &redb::WriteTransaction,
    write: &KvWrite,
) -> Result<KvOutcome, StoreError> {
    let mut data = txn.open_table(KV).map_err(db)?;
    let mut usage = txn.open_table(KV_USAGE).map_err(db)?;
    let (plugin, key) = match write {
        KvWrite::Set { plugin, key, .. } | KvWrite::Delete { plugin, key } => (plugin, key),
    };
    let mut used = usage_in(&usage, &data, plugin)?;
    let old = data
        .get((plugin.as_str(), key.as_str()))
        .map_err(db)?
        .map(|v| (key.len() + v.value().len()) as u64);
    match write {
        KvWrite::Set { value, quota, .. } => {
            // Refused, not failed: the journal commits other writers'
            // entries in the same transaction.
            if let Err(invalid) = validate_kv(key, value) {
                return Ok(KvOutcome::Refused(invalid.to_string()));
            }
            let new = (key.len() + value.len()) as u64;
            let bytes = used.bytes - old.unwrap_or(0) + new;
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
            data.insert((plugin.as_str(), key.as_str()), value.as_slice())
                .map_err(db)?;
            used = KvUsage { bytes, keys };
        }
        KvWrite::Delete { .. } => {
            let Some(old) = old else {
                return Ok(KvOutcome::Written);
            };
            data.remove((plugin.as_str(), key.as_str())).map_err(db)?;
            used.bytes -= old;
            used.keys -= 1;
        }
    }
    usage
        .insert(plugin.as_str(), (used.bytes, used.keys))
        .map_err(db)?;
    Ok(KvOutcome::Written)
}

/// Removes a plugin's whole namespace inside `txn`.
pub(super) fn forget_in(txn: &redb::WriteTransaction, plugin: &str) -> Result<(), StoreError> {
    let mut data = txn.open_table(KV).map_err(db)?;
    data.retain_in((plugin, "")..=(plugin, "\u{10FFFF}"), |_, _| false)
        .map_err(db)?;
    let mut usage = txn.open_table(KV_USAGE).map_err(db)?;
    usage.remove(plugin).map_err(db)?;
    Ok(())
}

impl Redb {
    /// The value under `key` in `plugin`'s namespace.
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(KV).map_err(db)?;
        Ok(table
            .get((plugin, key))
            .map_err(db)?
            .map(|v| v.value().to_vec()))
    }

    /// Applies one write in a transaction of its own (one fsync); the
    /// server's plugins write through the journal's group commit instead.
    fn kv_write(&self, write: &KvWrite) -> Result<KvOutcome, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let outcome = apply_in(&txn, write)?;
        if outcome == KvOutcome::Written {
            txn.commit().map_err(db)?;
        }
        Ok(outcome)
    }

    /// What `plugin`'s namespace holds.
    fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let usage = txn.open_table(KV_USAGE).map_err(db)?;
        let data = txn.open_table(KV).map_err(db)?;
        usage_in(&usage, &data, plugin)
    }

    /// The keys in `plugin`'s namespace that start with `prefix`, in order.
    fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(KV).map_err(db)?;
        let mut keys = Vec::new();
        for row in table.range((plugin, prefix)..).map_err(db)? {
            let (key, _) = row.map_err(db)?;
            let (owner, key) = key.value();
            if owner != plugin || !key.starts_with(prefix) {
                break;
            }
            keys.push(key.to_owned());
        }
        Ok(keys)
    }
}

#[async_trait]
impl crate::kv::KvRows for RedbBackend {
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.run(move |redb| redb.kv_get(&plugin, &key)).await
    }

    async fn kv_write(&self, write: &KvWrite) -> Result<KvOutcome, StoreError> {
        let write = write.clone();
        self.run(move |redb| redb.kv_write(&write)).await
    }

    async fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        let plugin = plugin.to_owned();
        self.run(move |redb| redb.kv_usage(&plugin)).await
    }

    async fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        self.run(move |redb| redb.kv_keys(&plugin, &prefix)).await
    }
}
