//! Several areas read inside one redb read transaction.

use async_trait::async_trait;
use redb::ReadableDatabase;

use super::{RedbBackend, db};
use crate::StoreError;
use crate::snapshot::{Reads, Snapshot};

#[async_trait]
impl crate::snapshot::SnapshotRows for RedbBackend {
    async fn snapshot(&self, reads: &Reads) -> Result<Snapshot, StoreError> {
        let reads = reads.clone();
        self.run(move |redb| {
            let txn = redb.db.begin_read().map_err(db)?;
            let mut snapshot = Snapshot::default();
            if reads.connections {
                snapshot.connections = super::connections::read_all(&txn)?;
            }
            if reads.plugins {
                snapshot.plugins = super::plugins::read_plugins(&txn)?;
            }
            if let Some(query) = &reads.executions {
                snapshot.executions = super::executions::read_executions(&txn, query)?;
            }
            if let Some(query) = &reads.deliveries {
                snapshot.deliveries = super::journal::read_deliveries(&txn, query)?;
            }
            Ok(snapshot)
        })
        .await
    }
}
