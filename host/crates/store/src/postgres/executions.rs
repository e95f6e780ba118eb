//! Execution records in PostgreSQL: one row per record, numbered in the
//! order stored, with its plugin, outcome and size beside its JSON, so a
//! listing and a trim read the index and never the documents.

use super::{Postgres, Prepared, big, decode};
use crate::StoreError;
use crate::encoded::Encoded;
use crate::journal::{ExecutionQuery, HistoryBudget};
use junction_core::ExecutionRecord;

/// Stores `records` inside `txn` and trims each plugin they belong to
/// down to `budget`, always keeping its newest record.
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
    // One statement for the batch; WITH ORDINALITY keeps the batch's order
    // in the numbering. A record stored twice (an attempt replayed) stays once.
    txn.run(
        "INSERT INTO executions (id, plugin, ok, size, doc) \
         SELECT id, plugin, ok, size, doc FROM \
         unnest($1::text[], $2::text[], $3::bool[], $4::bigint[], $5::bytea[]) \
         WITH ORDINALITY AS batch (id, plugin, ok, size, doc, n) ORDER BY n \
         ON CONFLICT (id) DO NOTHING",
        &[&ids, &plugins, &oks, &sizes, &docs],
    )
    .await?;
    let mut touched: Vec<&str> = plugins.clone();
    touched.sort_unstable();
    touched.dedup();
    let retention = big(budget.records.max(1));
    // Hosts trimming one plugin at once would delete the same old rows in
    // their own orders and deadlock: each takes only the rows no other
    // trim holds (that one deletes the rest).
    txn.run(
        "DELETE FROM executions WHERE seq IN ( \
           SELECT seq FROM executions WHERE seq IN ( \
             SELECT seq FROM ( \
               SELECT seq, \
                 row_number() OVER (PARTITION BY plugin ORDER BY seq DESC) AS newer, \
                 (sum(size) OVER (PARTITION BY plugin ORDER BY seq DESC))::bigint AS kept \
               FROM executions WHERE plugin = ANY($1)) ranked \
             WHERE newer > 1 AND (newer > $2 OR kept > $3)) \
           FOR UPDATE SKIP LOCKED)",
        &[&touched, &retention, &big(budget.bytes)],
    )
    .await?;
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
             ORDER BY seq DESC LIMIT $3",
            &[&query.plugin, &query.ok, &limit],
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
