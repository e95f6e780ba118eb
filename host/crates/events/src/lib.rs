//! What happens when events fire: triggers ([`trigger`], indexed in
//! [`index`]), accepting events durably ([`Events::ingest`], committed by the
//! journal writer in [`journal`] with group commits and idempotency keys),
//! the dispatcher that runs and retries deliveries ([`dispatch`]), the
//! scheduler ([`scheduler`], on a [`clock`] tests can move), and the
//! `connection.*` events emitted when a connection changes state, and the
//! host's Prometheus [`metrics`]. Plugins run through an [`Executor`]; this
//! crate knows neither wasmtime nor the registry.

pub mod clock;
pub mod dispatch;
pub mod executor;
pub mod index;
pub mod journal;
pub mod metrics;
pub mod scheduler;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Notify;

use crate::metrics::Metrics;
pub use clock::Clock;
pub use dispatch::{DispatchConfig, Dispatcher, Job};
pub use executor::{Executor, NotRunnable};
pub use index::{Target, TriggerIndex};
pub use journal::{Journal, JournalError, Retention};
use junction_core::new_id;
pub use junction_core::trigger;
use junction_store::{
    Delivery, DeliveryChange, DeliveryState, Encoded, EventRecord, JournalAnswer, JournalEntry,
    NewEvent, Store, StoreError,
};

/// Largest event payload, as JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Why an event operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    Invalid(String),
    #[error("the event payload is {0} bytes, above the limit of {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge(usize),
    #[error("no {kind} with id `{id}`")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An event to accept.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Its kind.
    pub kind: String,
    /// Its payload as JSON text.
    pub payload: String,
    /// Where it came from.
    pub source: &'static str,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// When it happened.
    pub occurred_at_ms: u64,
    /// Where it goes; matched against the triggers when absent.
    pub targets: Option<Vec<Target>>,
    /// For schedule events, the schedule's key and new last fire time.
    pub schedule_mark: Option<(String, u64)>,
    /// The end user it runs for.
    pub end_user: Option<String>,
}

/// What accepting an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The event's id (the first event's, for a repeated idempotency key).
    pub id: String,
    /// Deliveries made.
    pub matched: usize,
    /// Whether an earlier event had the same idempotency key.
    pub duplicate: bool,
}

/// Event kinds: 1 to 128 of a-z, 0-9, `.`, `_`, `-`.
pub fn check_kind(kind: &str) -> Result<(), EventsError> {
    if trigger::is_kind(kind, false) {
        Ok(())
    } else {
        Err(EventsError::Invalid(format!(
            "event kind `{kind}` is invalid: use 1 to 128 of a-z, 0-9, `.`, `_` and `-` (e.g. `lead.created`)"
        )))
    }
}

/// The event machinery of a running server.
pub struct Events {
    store: Arc<Store>,
    journal: Arc<Journal>,
    index: Arc<TriggerIndex>,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    clock: Clock,
    triggers_changed: Arc<Notify>,
}

/// The background tasks [`Events::start`] spawned.
pub struct EventTasks {
    dispatcher: tokio::task::JoinHandle<()>,
    scheduler: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    connections: tokio::task::JoinHandle<()>,
    leases: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
}

impl Events {
    /// Indexes the triggers, reloads the queue and starts the dispatcher,
    /// the scheduler and the connection watcher.
    pub async fn start(
        store: Arc<Store>,
        executor: Arc<dyn Executor>,
        journal: Arc<Journal>,
        metrics: Arc<Metrics>,
        config: DispatchConfig,
        clock: Clock,
    ) -> Result<(Arc<Events>, EventTasks), EventsError> {
        let index = Arc::new(TriggerIndex::default());
        let reload = store.clone();
        index.rebuild(&reload).await.map_err(|e| match e {
            index::IndexError::Store(e) => EventsError::Store(e),
        })?;
        let pending = reload.claim_deliveries(usize::MAX).await?;
        if !pending.is_empty() {
            tracing::info!(
                deliveries = pending.len(),
                "deliveries queued before the restart will run (again)"
            );
        }
        let lease = config.lease;
        let mut events_by_id: std::collections::HashMap<String, Arc<EventRecord>> =
            Default::default();
        let jobs = pending
            .into_iter()
            .map(|(delivery, event)| {
                let event = events_by_id
                    .entry(event.id.clone())
                    .or_insert_with(|| Arc::new(event))
                    .clone();
                job(&delivery, event)
            })
            .collect();
        let (dispatcher, dispatcher_task) = Dispatcher::start(
            executor,
            journal.clone(),
            metrics.clone(),
            index.clone(),
            config,
            jobs,
        );
        let events = Arc::new(Events {
            store: store.clone(),
            journal,
            index,
            dispatcher,
            metrics,
            clock,
            triggers_changed: Arc::new(Notify::new()),
        });
        let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel();
        let scheduler = tokio::spawn(scheduler::run(events.clone(), scheduler_stopped));
        let connections = tokio::spawn(watch_connections(
            Arc::downgrade(&events),
            store.connection_changes(),
        ));
        let (stop_leases, leases_stopped) = tokio::sync::oneshot::channel();
        let leases = tokio::spawn(keep_leases(events.clone(), lease, leases_stopped));
        Ok((
            events,
            EventTasks {
                dispatcher: dispatcher_task,
                scheduler: (stop_scheduler, scheduler),
                connections,
                leases: (stop_leases, leases),
            },
        ))
    }

    /// The journal (execution records, events, deliveries).
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The trigger index.
    pub fn index(&self) -> &Arc<TriggerIndex> {
        &self.index
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The clock schedules run on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Accepts an event: matches it to plugins, commits it with its
    /// deliveries (answering only once it is durable) and queues them.
    pub async fn ingest(&self, incoming: Incoming) -> Result<Accepted, EventsError> {
        check_kind(&incoming.kind)?;
        if let Some(user) = &incoming.end_user {
            junction_core::model::validate_end_user(user).map_err(EventsError::Invalid)?;
        }
        if incoming.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EventsError::TooLarge(incoming.payload.len()));
        }
        let targets = match incoming.targets {
            Some(targets) => targets,
            None => {
                let payload: Value = serde_json::from_str(&incoming.payload)
                    .map_err(|e| EventsError::Invalid(format!("the payload is not JSON: {e}")))?;
                self.index.targets(&incoming.kind, &payload)
            }
        };
        let now = junction_store::now_ms();
        let id = new_id();
        let deliveries: Vec<Delivery> = targets
            .iter()
            .map(|target| Delivery {
                id: new_id(),
                event_id: id.clone(),
                event_kind: incoming.kind.clone(),
                plugin: target.plugin.clone(),
                state: DeliveryState::Queued,
                attempts: 0,
                max_retries: target.retries,
                next_attempt_at_ms: now,
                created_at_ms: now,
                updated_at_ms: now,
                last_error: None,
                executions: Vec::new(),
                end_user: incoming.end_user.clone(),
            })
            .collect();
        let event = EventRecord {
            id,
            kind: incoming.kind,
            payload: incoming.payload,
            source: incoming.source.to_owned(),
            occurred_at_ms: incoming.occurred_at_ms,
            accepted_at_ms: now,
            idempotency_key: incoming.idempotency_key,
            deliveries: deliveries.iter().map(|d| d.id.clone()).collect(),
            end_user: incoming.end_user,
        };
        // The jobs share the event; the journal gets its encoded copy.
        let shared = Arc::new(event.clone());
        let jobs: Vec<Job> = deliveries.iter().map(|d| job(d, shared.clone())).collect();
        let new = NewEvent {
            event: Encoded::new(event)?,
            deliveries: deliveries
                .into_iter()
                .map(Encoded::new)
                .collect::<Result<_, _>>()?,
            schedule_mark: incoming.schedule_mark,
        };
        let answer = self
            .journal
            .write(JournalEntry::Event(Box::new(new)))
            .await?;
        let JournalAnswer::Event {
            id,
            matched,
            duplicate,
        } = answer
        else {
            return Err(EventsError::Journal(JournalError::UnexpectedAnswer {
                asked: "new event",
                answered: answer.kind(),
            }));
        };
        if !duplicate {
            self.metrics.event_accepted(&shared.source);
            self.dispatcher.enqueue(jobs);
        }
        Ok(Accepted {
            id,
            matched,
            duplicate,
        })
    }

    /// Reloads the trigger index (after a deploy, rollback, delete, or a
    /// trigger added or removed) and lets the scheduler see the change.
    pub async fn reload_triggers(&self) -> Result<(), EventsError> {
        let store = self.store.clone();
        let index = self.index.clone();
        index.rebuild(&store).await.map_err(|e| match e {
            index::IndexError::Store(e) => EventsError::Store(e),
        })?;
        self.triggers_changed.notify_one();
        Ok(())
    }

    /// A plugin was deleted: its queued deliveries are cancelled with the
    /// reason, its API triggers, schedules and webhook secrets forgotten.
    pub async fn plugin_deleted(&self, plugin: &str) -> Result<(), EventsError> {
        self.dispatcher
            .cancel_plugin(plugin, format!("plugin `{plugin}` was deleted"));
        self.store.forget_plugin_events(plugin).await?;
        self.reload_triggers().await
    }

    /// Queues a dead (or cancelled) delivery for one more attempt now.
    pub async fn retry(&self, delivery_id: &str) -> Result<Delivery, EventsError> {
        let found = match self.store.delivery(delivery_id).await? {
            Some(delivery) => {
                let event = self.store.event(&delivery.event_id).await?;
                Some((delivery, event))
            }
            None => None,
        };
        let Some((delivery, event)) = found else {
            return Err(EventsError::NotFound {
                kind: "delivery",
                id: delivery_id.to_owned(),
            });
        };
        let Some(event) = event else {
            return Err(EventsError::Conflict(format!(
                "delivery `{delivery_id}`'s event is no longer stored"
            )));
        };
        if !matches!(
            delivery.state,
            DeliveryState::Dead | DeliveryState::Cancelled
        ) {
            return Err(EventsError::Conflict(format!(
                "delivery `{delivery_id}` is {}; only dead or cancelled deliveries can be retried",
                state_word(delivery.state)
            )));
        }
        let now = junction_store::now_ms();
        let answer = self
            .journal
            .write(JournalEntry::Delivery {
                id: delivery.id.clone(),
                change: DeliveryChange::Requeue { at_ms: now },
            })
            .await?;
        if answer == JournalAnswer::Skipped {
            return Err(EventsError::Conflict(format!(
                "delivery `{delivery_id}` changed meanwhile; look at it again"
            )));
        }
        let requeued = junction_store::apply_change(
            delivery,
            &DeliveryChange::Requeue { at_ms: now },
            None,
            now,
        )
        .ok_or_else(|| {
            EventsError::Conflict(format!("delivery `{delivery_id}` cannot be retried"))
        })?;
        self.dispatcher
            .enqueue(vec![job(&requeued, Arc::new(event))]);
        Ok(requeued)
    }

    /// Stops the scheduler and connection watcher, then lets running
    /// deliveries finish; queued ones stay in the store for the next start.
    pub async fn stop(&self, tasks: EventTasks) {
        let (stop_scheduler, scheduler) = tasks.scheduler;
        let _ = stop_scheduler.send(());
        let _ = scheduler.await;
        tasks.connections.abort();
        let _ = tasks.connections.await;
        self.dispatcher.stop().await;
        let _ = tasks.dispatcher.await;
        // Renewing stops only once nothing runs; what is still queued is
        // let go, so another host (or this one, restarted) takes it at once.
        let (stop_leases, leases) = tasks.leases;
        let _ = stop_leases.send(());
        let _ = leases.await;
        if let Err(err) = self.store.release_leases().await {
            tracing::warn!(error = %err, "cannot let go of this host's deliveries; other hosts take them when the lease lapses");
        }
    }

    pub(crate) fn triggers_changed(&self) -> &Notify {
        &self.triggers_changed
    }
}

/// The word the API uses for a state.
pub fn state_word(state: DeliveryState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn job(delivery: &Delivery, event: Arc<EventRecord>) -> Job {
    Job {
        delivery: delivery.clone(),
        event,
    }
}

/// Deliveries one claim takes, and most claims in one sweep: a dead host's
/// backlog is shared by the hosts left instead of taken by the first.
const CLAIM_BATCH: usize = 256;
const CLAIMS_PER_SWEEP: usize = 4;

/// Keeps this host's deliveries leased, and takes over the deliveries of
/// hosts that stopped renewing theirs: every third of the lease it renews
/// and claims. On a store one process owns both are free no-ops.
async fn keep_leases(
    events: Arc<Events>,
    lease: std::time::Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let period = (lease / 3).max(std::time::Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(err) = events.store.renew_leases().await {
            tracing::warn!(error = %err, "cannot renew this host's delivery leases");
        }
        for _ in 0..CLAIMS_PER_SWEEP {
            match events.store.claim_deliveries(CLAIM_BATCH).await {
                Ok(claimed) if claimed.is_empty() => break,
                Ok(claimed) => {
                    let full = claimed.len() == CLAIM_BATCH;
                    tracing::info!(
                        deliveries = claimed.len(),
                        "took over deliveries another host stopped holding"
                    );
                    let jobs = claimed
                        .into_iter()
                        .map(|(delivery, event)| job(&delivery, Arc::new(event)))
                        .collect();
                    events.dispatcher.enqueue(jobs);
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot claim deliveries");
                    break;
                }
            }
        }
    }
}

/// Turns connection status changes into `connection.<status>` events.
async fn watch_connections(
    events: std::sync::Weak<Events>,
    mut changes: tokio::sync::broadcast::Receiver<junction_store::ConnectionChange>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "connection changes came faster than they could be turned into events"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(events) = events.upgrade() else {
            return;
        };
        let status = serde_json::to_value(change.status).unwrap_or(Value::Null);
        let previous = change
            .previous
            .and_then(|p| serde_json::to_value(p).ok())
            .unwrap_or(Value::Null);
        let payload = serde_json::json!({
            "link_name": change.link_name,
            "end_user": change.end_user,
            "service": change.service,
            "status": status,
            "previous": previous,
            "reason": change.reason,
        });
        let kind = format!("connection.{}", status.as_str().unwrap_or("error"));
        let incoming = Incoming {
            kind,
            payload: payload.to_string(),
            source: "connection",
            idempotency_key: None,
            occurred_at_ms: junction_store::now_ms(),
            targets: None,
            schedule_mark: None,
            end_user: change.end_user.clone(),
        };
        if let Err(err) = events.ingest(incoming).await {
            tracing::error!(link = %change.link_name, error = %err, "cannot record the connection's change as an event");
        }
    }
}
