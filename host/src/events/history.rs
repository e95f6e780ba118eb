//! The execution history writer: executions are queued to one writer thread
//! that commits whatever has accumulated in one redb transaction, so many
//! concurrent executions share one fsync. A caller waits until its record is
//! durable, so an execution is listed as soon as its invoke returns.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::runtime::ExecutionRecord;
use crate::store::Store;

/// Records kept per plugin by default.
pub const DEFAULT_RETENTION: u64 = 10_000;
/// Most records committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Records waiting for the writer before callers are slowed down.
const QUEUE: usize = 8192;

type Pending = (ExecutionRecord, oneshot::Sender<Result<(), String>>);

/// Why a record was not stored.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the execution history is closed")]
    Closed,
    #[error("cannot store the execution record: {0}")]
    Store(String),
    #[error("cannot start the history writer: {0}")]
    Start(std::io::Error),
}

/// The history writer. Dropping every clone of the sender stops the thread
/// after it has written what was queued.
pub struct History {
    sender: mpsc::Sender<Pending>,
    writer: Option<JoinHandle<()>>,
}

impl History {
    /// Starts the writer thread.
    pub fn start(store: Arc<Store>, retention: u64) -> Result<Self, HistoryError> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("junction-history".into())
            .spawn(move || write_batches(store, receiver, retention.max(1)))
            .map_err(HistoryError::Start)?;
        Ok(History {
            sender,
            writer: Some(writer),
        })
    }

    /// Stores `record`; returns once it is committed.
    pub async fn record(&self, record: ExecutionRecord) -> Result<(), HistoryError> {
        let (done, committed) = oneshot::channel();
        self.sender
            .send((record, done))
            .await
            .map_err(|_| HistoryError::Closed)?;
        committed
            .await
            .map_err(|_| HistoryError::Closed)?
            .map_err(HistoryError::Store)
    }

    /// Stops accepting records and waits until the queued ones are written.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (closed, _) = mpsc::channel(1);
        // Replacing the sender drops the last one, which ends the writer's loop.
        self.sender = closed;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the history writer panicked");
        }
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_batches(store: Arc<Store>, mut receiver: mpsc::Receiver<Pending>, retention: u64) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (records, waiters): (Vec<ExecutionRecord>, Vec<_>) = batch.into_iter().unzip();
        let result = store
            .insert_executions(&records, retention)
            .map_err(|e| e.to_string());
        if let Err(err) = &result {
            tracing::error!(error = %err, records = records.len(), "cannot store execution records");
        }
        for waiter in waiters {
            // A caller that gave up waiting does not need the answer.
            let _ = waiter.send(result.clone());
        }
    }
}
