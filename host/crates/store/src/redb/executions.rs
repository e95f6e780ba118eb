//! Execution records, newest first, with a per-plugin history budget in
//! records and in bytes: past either, the plugin's oldest records go. Records
//! are written in batches (one transaction, one fsync for many executions)
//! by the journal's group commit.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, db};
use crate::StoreError;
use crate::journal::{ExecutionQuery, HistoryBudget};
use junction_core::ExecutionRecord;

/// Sequence number → the record as JSON.
pub(super) const EXECUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("executions");
/// Execution id → sequence number.
pub(super) const EXECUTION_IDS: TableDefinition<&str, u64> = TableDefinition::new("execution_ids");
/// (plugin, sequence number) → whether it succeeded.
pub(super) const BY_PLUGIN: TableDefinition<(&str, u64), bool> =
    TableDefinition::new("executions_by_plugin");
/// Plugin → how many of its records are kept.
pub(super) const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("execution_counts");
/// Plugin → the bytes its kept records take.
pub(super) const BYTES: TableDefinition<&str, u64> = TableDefinition::new("execution_bytes");

const NEXT_SEQ: &str = "next_execution_seq";

fn decode(seq: u64, bytes: &[u8]) -> Result<ExecutionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| super::corrupt(format!("executions/{seq}"), e))
}

/// The id of a stored record, which serde writes as its first field, read
/// without parsing the rest; `None` if the record does not start that way.
fn leading_id(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(br#"{"id":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// The id of the stored record `seq`: its leading field, or parsed (the
/// rest skipped unkept) when the record does not start with it.
fn stored_id(seq: u64, bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, StoreError> {
    if let Some(id) = leading_id(bytes) {
        return Ok(id.into());
    }
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(bytes)
        .map(|record| record.id.into())
        .map_err(|e| super::corrupt(format!("executions/{seq}"), e))
}

/// Appends `records` inside `txn`, then trims each plugin's history to its
/// budget, oldest first; the newest record is always kept.
pub(super) fn insert_in(
    txn: &redb::WriteTransaction,
    records: &[&crate::encoded::Encoded<ExecutionRecord>],
    budget: HistoryBudget,
) -> Result<(), StoreError> {
    let retention = budget.records.max(1);
    let mut meta = txn.open_table(super::META).map_err(db)?;
    let mut executions = txn.open_table(EXECUTIONS).map_err(db)?;
    let mut seq = super::next_seq(&meta, NEXT_SEQ, &executions)?;
    let mut ids = txn.open_table(EXECUTION_IDS).map_err(db)?;
    let mut by_plugin = txn.open_table(BY_PLUGIN).map_err(db)?;
    let mut counts = txn.open_table(COUNTS).map_err(db)?;
    let mut sizes = txn.open_table(BYTES).map_err(db)?;
    // Each plugin's count and bytes are read once and written once per batch.
    let mut kept: std::collections::HashMap<&str, (u64, u64)> = std::collections::HashMap::new();
    for encoded in records {
        let record = &encoded.value;
        executions
            .insert(seq, encoded.bytes.as_slice())
            .map_err(db)?;
        ids.insert(record.id.as_str(), seq).map_err(db)?;
        by_plugin
            .insert((record.plugin.as_str(), seq), record.is_ok())
            .map_err(db)?;
        let plugin = record.plugin.as_str();
        let (count, bytes) = match kept.get(plugin) {
            Some(k) => *k,
            None => {
                let count = counts
                    .get(plugin)
                    .map_err(db)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                let bytes = match sizes.get(plugin).map_err(db)? {
                    Some(v) => v.value(),
                    // Kept before sizes were: count them once.
                    None => {
                        let mut total = 0u64;
                        for row in by_plugin.range((plugin, 0)..(plugin, seq)).map_err(db)? {
                            let (key, _) = row.map_err(db)?;
                            if let Some(bytes) = executions.get(key.value().1).map_err(db)? {
                                total += bytes.value().len() as u64;
                            }
                        }
                        total
                    }
                };
                (count, bytes)
            }
        };
        kept.insert(plugin, (count + 1, bytes + encoded.bytes.len() as u64));
        seq += 1;
    }
    // Trimmed once per plugin per batch, reading only as many of the oldest
    // keys as are over the budget in records (at least one while over it in
    // bytes): a walk over the whole history on every batch would make each
    // commit cost as much as the history is long.
    for (plugin, (count, bytes)) in kept.iter_mut() {
        while *count > 1 && (*count > retention || *bytes > budget.bytes) {
            let excess = count.saturating_sub(retention).max(1).min(*count - 1);
            let oldest: Vec<u64> = by_plugin
                .range((*plugin, 0)..=(*plugin, u64::MAX))
                .map_err(db)?
                .take(excess as usize)
                .map(|row| row.map(|(key, _)| key.value().1))
                .collect::<Result<_, _>>()
                .map_err(db)?;
            if oldest.is_empty() {
                break;
            }
            for old in oldest {
                if *count <= retention && *bytes <= budget.bytes {
                    break;
                }
                by_plugin.remove((*plugin, old)).map_err(db)?;
                if let Some(stored) = executions.remove(old).map_err(db)? {
                    *bytes = bytes.saturating_sub(stored.value().len() as u64);
                    ids.remove(stored_id(old, stored.value())?.as_ref())
                        .map_err(db)?;
                }
                *count -= 1;
            }
        }
    }
    for (plugin, (count, bytes)) in kept {
        counts.insert(plugin, count).map_err(db)?;
        sizes.insert(plugin, bytes).map_err(db)?;
    }
    // A plugin's newest record is always kept, so this writes only if a
    // trim ever removes the newest rows.
    super::keep_seq_floor(&mut meta, NEXT_SEQ, &executions, seq)?;
    Ok(())
}

impl Redb {
    /// Appends `records` in one transaction, then trims each plugin's history
    /// to its budget.
    pub(super) fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        budget: HistoryBudget,
    ) -> Result<(), StoreError> {
        let encoded = records
            .into_iter()
            .map(crate::encoded::Encoded::new)
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&crate::encoded::Encoded<ExecutionRecord>> = encoded.iter().collect();
        let txn = self.db.begin_write().map_err(db)?;
        insert_in(&txn, &refs, budget)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// The execution with this id.
    pub(super) fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let ids = txn.open_table(EXECUTION_IDS).map_err(db)?;
        let Some(seq) = ids.get(id).map_err(db)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let executions = txn.open_table(EXECUTIONS).map_err(db)?;
        match executions.get(seq).map_err(db)? {
            Some(bytes) => decode(seq, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Executions matching `query`, newest first.
    pub(super) fn executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        read_executions(&self.db.begin_read().map_err(db)?, query)
    }
}

/// Whether `record` ran for the end user `query` asks for (any, if none).
fn ran_for(query: &ExecutionQuery, record: &ExecutionRecord) -> bool {
    query
        .end_user
        .as_ref()
        .is_none_or(|user| Some(user) == record.end_user.as_ref())
}

/// Executions matching `query`, newest first, as of the read transaction `txn`.
pub(super) fn read_executions(
    txn: &redb::ReadTransaction,
    query: &ExecutionQuery,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let executions = txn.open_table(EXECUTIONS).map_err(db)?;
    let mut out = Vec::new();
    if query.limit == 0 {
        return Ok(out);
    }
    match &query.plugin {
        Some(plugin) => {
            let by_plugin = txn.open_table(BY_PLUGIN).map_err(db)?;
            let plugin = plugin.as_str();
            for row in by_plugin
                .range((plugin, 0)..=(plugin, u64::MAX))
                .map_err(db)?
                .rev()
            {
                let (key, ok) = row.map_err(db)?;
                if query.ok.is_some_and(|want| want != ok.value()) {
                    continue;
                }
                let seq = key.value().1;
                if let Some(bytes) = executions.get(seq).map_err(db)? {
                    let record = decode(seq, bytes.value())?;
                    if ran_for(query, &record) {
                        out.push(record);
                    }
                }
                if out.len() >= query.limit {
                    break;
                }
            }
        }
        None => {
            for row in executions.iter().map_err(db)?.rev() {
                let (seq, bytes) = row.map_err(db)?;
                let record = decode(seq.value(), bytes.value())?;
                if query.ok.is_some_and(|want| want != record.is_ok()) || !ran_for(query, &record) {
                    continue;
                }
                out.push(record);
                if out.len() >= query.limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_records_id_is_read_from_its_first_field_or_parsed() {
        let record = crate::conformance::record("0190aa-ok", "p", true, 1, "out");
        let bytes = serde_json::to_vec(&record).unwrap();
        assert_eq!(leading_id(&bytes), Some("0190aa-ok"));
        assert_eq!(stored_id(7, &bytes).unwrap(), "0190aa-ok");
        // Written some other way: parsed instead.
        let reordered = br#"{"plugin":"p","id":"x1"}"#;
        assert_eq!(leading_id(reordered), None);
        assert_eq!(stored_id(7, reordered).unwrap(), "x1");
        let escaped = br#"{"id":"a\"b","plugin":"p"}"#;
        assert_eq!(leading_id(escaped), None);
        assert_eq!(stored_id(7, escaped).unwrap(), "a\"b");
        assert!(
            matches!(stored_id(7, b"{"), Err(StoreError::Corrupt(what, _)) if what == "executions/7")
        );
    }
}
