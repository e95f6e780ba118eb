//! Several areas read in one repeatable-read transaction, so the parts of
//! a snapshot agree with each other as of one moment.

use async_trait::async_trait;
use tokio_postgres::IsolationLevel;

use super::Postgres;
use crate::StoreError;
use crate::snapshot::{Reads, Snapshot};

#[async_trait]
impl crate::snapshot::SnapshotRows for Postgres {
    async fn snapshot(&self, reads: &Reads) -> Result<Snapshot, StoreError> {
        let mut client = self.client().await?;
        let txn = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut snapshot = Snapshot::default();
        if reads.connections {
            snapshot.connections = super::connections::all(&txn).await?;
        }
        if reads.plugins {
            snapshot.plugins = super::plugins::all(&txn).await?;
        }
        if let Some(query) = &reads.executions {
            snapshot.executions = super::executions::read(&txn, query).await?;
        }
        if let Some(query) = &reads.deliveries {
            snapshot.deliveries = super::journal::read_deliveries(&txn, query).await?;
        }
        txn.commit().await?;
        Ok(snapshot)
    }
}
