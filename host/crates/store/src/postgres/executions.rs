//! Execution records in PostgreSQL: one row per record, numbered in the
//! order stored, with its plugin, outcome and size beside its JSON, so a
//! listing and a trim read the index and never the documents.

use super::{Postgres, Prepared, big, decode};
use crate::StoreError;
use crate::encoded::Encoded;
use crate::journal::{ExecutionQuery, HistoryBudget};
use junction_core::ExecutionRecord;

/// Stores `records` inside `txn` and trims each plugin they belong to
/// down to `budget`, always keeping its newest record. Each plugin's count
/// and bytes are kept beside its records (`execution_totals`), so a trim
/// deletes just the oldest rows past the budget through the index instead
/// of ranking the whole history on every batch; the totals row also
/// serialises two hosts trimming one plugin.
pub(super) async fn insert_in(
    txn: &deadpool_postgres::Transaction<'_>,
    records: &[&Encoded<ExecutionRecord>],
    budget: HistoryBudget,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = records.iter().map(|r| r.value.id.as_str()).collect();
    let plugins: Vec<&str> = records.iter().map(|r| r.value.plugin.as_str()).collect();
    let oks: Vec<bool> = records.iter().map(|r| r.value.is_ok()).collect();
    let sizes: Vec<i64> = records.iter().map(|r| r.bytes.len() as i64).collect();
    let docs: Vec<&[u8]> = records.iter().map(|r| r.bytes.as_slice()).collect();
    let end_users: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.value.end_user.as_deref())
        .collect();
    // One statement for the batch; WITH ORDINALITY keeps the batch's order
    // in the numbering. A record stored twice (an attempt replayed) stays
    // once, and only what was stored is counted.
    let stored = txn
        .rows(
            "INSERT INTO executions (id, plugin, ok, size, doc, end_user) \
             SELECT id, plugin, ok, size, doc, end_user FROM \
             unnest($1::text[], $2::text[], $3::bool[], $4::bigint[], $5::bytea[], $6::text[]) \
             WITH ORDINALITY AS batch (id, plugin, ok, size, doc, end_user, n) ORDER BY n \
             ON CONFLICT (id) DO NOTHING RETURNING plugin, size",
            &[&ids, &plugins, &oks, &sizes, &docs, &end_users],
        )
        .await?;
    let mut added: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for row in &stored {
        let entry = added.entry(row.get(0)).or_default();
        entry.0 += 1;
        entry.1 += row.get::<_, i64>(1);
    }
    let (keep_records, keep_bytes) = (big(budget.records.max(1)), big(budget.bytes));
    // In name order, so two batches of the same plugins lock their totals
    // in the same order.
    for (plugin, (count, bytes)) in added {
        let totals = txn
            .row(
                "INSERT INTO execution_totals AS t (plugin, records, bytes) VALUES ($1, $2, $3) \
                 ON CONFLICT (plugin) DO UPDATE SET records = t.records + EXCLUDED.records, \
                   bytes = t.bytes + EXCLUDED.bytes \
                 RETURNING records, bytes",
                &[&plugin, &count, &bytes],
            )
            .await?;
        let (mut records, mut bytes): (i64, i64) = (totals.get(0), totals.get(1));
        let mut removed = (0i64, 0i64);
        // Whole rows go oldest first until both budgets hold; the newest
        // record stays whatever its size.
        while records > 1 && (records > keep_records || bytes > keep_bytes) {
            let over_count = (records - keep_records).max(0);
            let average = (bytes / records.max(1)).max(1);
            let over_bytes = if bytes > keep_bytes {
                (bytes - keep_bytes + average - 1) / average
            } else {
                0
            };
            let take = over_count.max(over_bytes).clamp(1, records - 1);
            let gone = txn
                .rows(
                    "DELETE FROM executions WHERE seq IN ( \
                       SELECT seq FROM executions WHERE plugin = $1 ORDER BY seq LIMIT $2 \
                       FOR UPDATE SKIP LOCKED) \
                     RETURNING size",
                    &[&plugin, &take],
                )
                .await?;
            if gone.is_empty() {
                break;
            }
            let freed: i64 = gone.iter().map(|row| row.get::<_, i64>(0)).sum();
            records -= gone.len() as i64;
            bytes -= freed;
            removed.0 += gone.len() as i64;
            removed.1 += freed;
        }
        if removed.0 > 0 {
            txn.run(
                "UPDATE execution_totals SET records = records - $2, bytes = bytes - $3 \
                 WHERE plugin = $1",
                &[&plugin, &removed.0, &removed.1],
            )
            .await?;
        }
    }
    Ok(())
}

/// Executions matching `query`, newest first, through `client`.
pub(super) async fn read(
    client: &impl Prepared,
    query: &ExecutionQuery,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let limit = big(query.limit as u64);
    let rows = client
        .rows(
            "SELECT seq, doc FROM executions \
             WHERE ($1::text IS NULL OR plugin = $1) AND ($2::bool IS NULL OR ok = $2) \
             AND ($4::text IS NULL OR end_user = $4) \
             ORDER BY seq DESC LIMIT $3",
            &[&query.plugin, &query.ok, &limit, &query.end_user],
        )
        .await?;
    rows.iter()
        .map(|row| decode(&format!("executions/{}", row.get::<_, i64>(0)), row.get(1)))
        .collect()
}

impl Postgres {
    pub(super) async fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        retention: HistoryBudget,
    ) -> Result<(), StoreError> {
        let encoded = records
            .into_iter()
            .map(Encoded::new)
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Encoded<ExecutionRecord>> = encoded.iter().collect();
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        insert_in(&txn, &refs, retention).await?;
        txn.commit().await?;
        Ok(())
    }

    pub(super) async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM executions WHERE id = $1", &[&id])
            .await?;
        row.map(|row| decode(&format!("executions/{id}"), row.get(0)))
            .transpose()
    }

    pub(super) async fn executions(
        &self,
        query: &ExecutionQuery,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let client = self.client().await?;
        read(&client, query).await
    }
}
