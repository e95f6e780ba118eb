//! The journal writer: execution records, accepted events and delivery
//! changes are queued to one writer thread that commits whatever has
//! accumulated in one redb transaction, so many concurrent writers share one
//! fsync. A caller waits until its entry is durable: an execution is listed
//! as soon as its invoke returns, and an event is acknowledged only once it
//! is committed. Entries arrive encoded, so this thread — the one point
//! every write passes — only copies bytes into redb. Committed execution
//! records are also broadcast, for `junction events tail`. Plugins' kv
//! writes join the same batches ([`Journal::kv`]).

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use junction_core::ExecutionRecord;
use junction_store::{Encoded, JournalAnswer, JournalEntry, KvOutcome, KvWrite, Store, StoreError};

/// Records kept per plugin by default.
pub const DEFAULT_RETENTION: u64 = 10_000;
/// Events kept by default (events with a delivery still queued or dead are kept beyond it).
pub const DEFAULT_EVENT_RETENTION: u64 = 100_000;
/// Most entries committed in one transaction.
const MAX_BATCH: usize = 2048;
/// Entries waiting for the writer before callers are slowed down.
const QUEUE: usize = 16_384;
/// Executions a slow live follower may fall behind before it skips ahead.
const LIVE_BUFFER: usize = 1024;
/// Events written between two prunes of old events.
const PRUNE_EVERY: u64 = 4096;
/// Bytes of execution records kept per plugin by default.
pub const DEFAULT_EXECUTION_BYTES: u64 = 64 * 1024 * 1024;
/// How long finished events (dead letters included) are kept by default.
pub const DEFAULT_EVENT_MAX_AGE: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 3600);
/// The longest time between two prunes, however few events arrive.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

type Pending = (
    JournalEntry,
    oneshot::Sender<Result<JournalAnswer, Arc<StoreError>>>,
);

/// Why an entry was not stored.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal is closed")]
    Closed,
    /// The batch it was in failed; every entry of the batch gets the same error.
    #[error("cannot store it")]
    Store(#[source] Arc<StoreError>),
    #[error("the journal answered a {asked} with {answered}")]
    UnexpectedAnswer {
        asked: &'static str,
        answered: &'static str,
    },
    #[error("cannot start the journal writer: {0}")]
    Start(std::io::Error),
}

/// How much is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Execution records per plugin.
    pub executions: u64,
    /// Bytes of execution records per plugin.
    pub execution_bytes: u64,
    /// Events.
    pub events: u64,
    /// How long an event whose deliveries are all finished is kept.
    pub event_max_age: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            executions: DEFAULT_RETENTION,
            execution_bytes: DEFAULT_EXECUTION_BYTES,
            events: DEFAULT_EVENT_RETENTION,
            event_max_age: DEFAULT_EVENT_MAX_AGE,
        }
    }
}

/// The journal writer. Dropping it stops the thread after it has written
/// what was queued.
pub struct Journal {
    sender: mpsc::Sender<Pending>,
    writer: Option<JoinHandle<()>>,
    live: broadcast::Sender<Arc<ExecutionRecord>>,
}

impl Journal {
    /// Starts the writer thread.
    pub fn start(store: Arc<Store>, retention: Retention) -> Result<Self, JournalError> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let writer_live = live.clone();
        // Its own runtime: the writer drains what is queued even while the
        // server's runtime shuts down, so nothing accepted is lost.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(JournalError::Start)?;
        let writer = std::thread::Builder::new()
            .name("junction-journal".into())
            .spawn(move || runtime.block_on(write_batches(store, receiver, retention, writer_live)))
            .map_err(JournalError::Start)?;
        Ok(Journal {
            sender,
            writer: Some(writer),
            live,
        })
    }

    /// Stores an execution record; returns once it is committed.
    pub async fn record(&self, encoded: Arc<Encoded<ExecutionRecord>>) -> Result<(), JournalError> {
        self.write(JournalEntry::Execution(encoded))
            .await
            .map(|_| ())
    }

    /// Commits one entry (in a batch with whatever else is waiting).
    pub async fn write(&self, entry: JournalEntry) -> Result<JournalAnswer, JournalError> {
        let (done, committed) = oneshot::channel();
        self.sender
            .send((entry, done))
            .await
            .map_err(|_| JournalError::Closed)?;
        committed
            .await
            .map_err(|_| JournalError::Closed)?
            .map_err(JournalError::Store)
    }

    /// Applies a plugin's kv write in the next group commit.
    pub async fn kv(&self, write: KvWrite) -> Result<KvOutcome, JournalError> {
        match self.write(JournalEntry::Kv(Box::new(write))).await? {
            JournalAnswer::Kv(outcome) => Ok(outcome),
            other => Err(JournalError::UnexpectedAnswer {
                asked: "kv write",
                answered: other.kind(),
            }),
        }
    }

    /// Execution records as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ExecutionRecord>> {
        self.live.subscribe()
    }

    /// Stops accepting entries and waits until the queued ones are written.
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
            tracing::error!("the journal writer panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn write_batches(
    store: Arc<Store>,
    mut receiver: mpsc::Receiver<Pending>,
    retention: Retention,
    live: broadcast::Sender<Arc<ExecutionRecord>>,
) {
    // The first batch prunes, so a restart after a long pause catches up.
    let mut events_since_prune = PRUNE_EVERY;
    let mut last_prune = std::time::Instant::now();
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (entries, waiters): (Vec<JournalEntry>, Vec<_>) = batch.into_iter().unzip();
        let budget = junction_store::HistoryBudget {
            records: retention.executions,
            bytes: retention.execution_bytes,
        };
        let count = entries.len();
        let new_events = entries
            .iter()
            .filter(|entry| matches!(entry, JournalEntry::Event(_)))
            .count() as u64;
        // Copied only when someone follows: the batch goes to the store.
        let followed: Vec<Arc<ExecutionRecord>> = if live.receiver_count() > 0 {
            entries
                .iter()
                .filter_map(|entry| match entry {
                    JournalEntry::Execution(record) => Some(&record.value),
                    JournalEntry::Settled {
                        record: Some(record),
                        ..
                    } => Some(&record.value),
                    _ => None,
                })
                .map(|record| Arc::new(record.clone()))
                .collect()
        } else {
            Vec::new()
        };
        match store.commit_journal(entries, budget).await {
            Ok(answers) => {
                for (answer, waiter) in answers.into_iter().zip(waiters) {
                    // A caller that gave up waiting does not need the answer.
                    let _ = waiter.send(Ok(answer));
                }
                events_since_prune += new_events;
                for record in followed {
                    // Nobody following is not an error.
                    let _ = live.send(record);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, entries = count, "cannot commit the journal batch");
                let err = Arc::new(err);
                for waiter in waiters {
                    let _ = waiter.send(Err(err.clone()));
                }
            }
        }
        if events_since_prune >= PRUNE_EVERY || last_prune.elapsed() >= PRUNE_INTERVAL {
            events_since_prune = 0;
            last_prune = std::time::Instant::now();
            let max_age = u64::try_from(retention.event_max_age.as_millis()).unwrap_or(u64::MAX);
            match store.prune_events(retention.events, max_age).await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "old events pruned"),
                Err(err) => tracing::warn!(error = %err, "cannot prune old events"),
            }
        }
    }
}
