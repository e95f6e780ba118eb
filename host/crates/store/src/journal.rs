//! The journal: events with their deliveries, the delivery queue, and the
//! execution records, as one area because one group commit
//! ([`JournalRows::commit_journal`]) writes all of them together; and the
//! triggers beside it (API-registered triggers, the last fire time of each
//! schedule, webhook secrets). The types here are what every backend stores
//! and returns; [`apply_change`] is the one rule of how a delivery changes,
//! shared by the backends and the dispatcher.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::encoded::Encoded;
use junction_core::ExecutionRecord;

/// How long an idempotency key answers with the first event.
pub const IDEMPOTENCY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// An accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its id, passed to plugins so they can deduplicate.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The payload as JSON text.
    pub payload: String,
    /// Where it came from: `api`, `webhook`, `schedule` or `connection`.
    pub source: String,
    /// When it happened.
    pub occurred_at_ms: u64,
    /// When it was committed.
    pub accepted_at_ms: u64,
    /// The caller's idempotency key.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Its deliveries' ids, one per plugin it was sent to.
    #[serde(default)]
    pub deliveries: Vec<String>,
    /// The end user it runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Waiting to run (first attempt or a retry at `next_attempt_at_ms`).
    Queued,
    /// Running now (never stored: a delivery running at a crash is queued).
    Running,
    /// An attempt succeeded.
    Succeeded,
    /// Every attempt failed; retry it by hand.
    Dead,
    /// It will not run, with the reason (the plugin was deleted).
    Cancelled,
}

impl DeliveryState {
    /// Whether nothing more happens to it unless someone retries it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Succeeded | DeliveryState::Dead | DeliveryState::Cancelled
        )
    }

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Running => "running",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Dead => "dead",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => DeliveryState::Queued,
            "running" => DeliveryState::Running,
            "succeeded" => DeliveryState::Succeeded,
            "dead" => DeliveryState::Dead,
            "cancelled" => DeliveryState::Cancelled,
            _ => return None,
        })
    }
}

/// One event sent to one plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The event's kind.
    pub event_kind: String,
    /// The plugin it goes to.
    pub plugin: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Retries allowed after the first attempt fails.
    pub max_retries: u32,
    /// When it is due (queued) or was last attempted.
    pub next_attempt_at_ms: u64,
    /// When it was created.
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
    /// Why the last attempt failed, or why it was cancelled.
    pub last_error: Option<String>,
    /// The executions of its attempts, oldest first.
    pub executions: Vec<String>,
    /// The end user its event runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
}

/// An event to accept together with its deliveries.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event.
    pub event: Encoded<EventRecord>,
    /// Its deliveries (state queued, due now).
    pub deliveries: Vec<Encoded<Delivery>>,
    /// For schedule events: the schedule's key and its new last fire time,
    /// committed with the event so a crash cannot fire it twice or lose it.
    pub schedule_mark: Option<(String, u64)>,
}

/// What happens to a delivery.
#[derive(Debug, Clone)]
pub enum DeliveryChange {
    /// The attempt succeeded.
    Succeeded,
    /// The attempt failed; try again at `at`.
    Retry { at_ms: u64, error: String },
    /// The attempt failed and no retries are left.
    Dead { error: String },
    /// It will not run.
    Cancelled { reason: String },
    /// Queued again by hand (from dead or cancelled), for one more attempt.
    Requeue { at_ms: u64 },
}

/// One write for the journal.
#[derive(Debug)]
pub enum JournalEntry {
    /// An execution record (from an invoke, or a delivery's attempt),
    /// shared with the caller who answers with the same bytes.
    Execution(std::sync::Arc<Encoded<ExecutionRecord>>),
    /// A new event.
    Event(Box<NewEvent>),
    /// A delivery's attempt ended: its new state (computed by the
    /// dispatcher, which owns a delivery while it is queued) replaces the
    /// stored one, with the attempt's record.
    Settled {
        delivery: Box<Encoded<Delivery>>,
        /// When it was due before, to find its queue entry.
        previous_due_ms: u64,
        record: Option<Box<Encoded<ExecutionRecord>>>,
    },
    /// A delivery changes as the store has it (cancelled, retried by hand);
    /// not applied when it no longer fits the stored state.
    Delivery { id: String, change: DeliveryChange },
    /// A plugin's kv write.
    Kv(Box<junction_core::kv::KvWrite>),
}

/// What one journal entry did.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalAnswer {
    /// Written.
    Written,
    /// The event was stored, or an earlier event had its idempotency key.
    Event {
        id: String,
        matched: usize,
        duplicate: bool,
    },
    /// The delivery was already final (or gone), so the change was not applied.
    Skipped,
    /// What a kv write did.
    Kv(junction_core::kv::KvOutcome),
}

impl JournalAnswer {
    /// Which answer this is, for an error that names it.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalAnswer::Written => "written",
            JournalAnswer::Event { .. } => "event",
            JournalAnswer::Skipped => "skipped",
            JournalAnswer::Kv(_) => "kv outcome",
        }
    }
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// Only those run for this end user.
    pub end_user: Option<String>,
    /// At most this many.
    pub limit: usize,
}
/// How much history each plugin keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryBudget {
    /// Records.
    pub records: u64,
    /// Bytes of stored records.
    pub bytes: u64,
}

impl HistoryBudget {
    /// A budget in records only.
    pub fn records(records: u64) -> Self {
        HistoryBudget {
            records,
            bytes: u64::MAX,
        }
    }
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// Only successes (`Some(true)`) or failures (`Some(false)`).
    pub ok: Option<bool>,
    /// Only those run for this end user.
    pub end_user: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Events, deliveries and execution records.
#[async_trait]
pub trait JournalRows: Send + Sync {
    /// Applies a batch of journal entries in one transaction (the group
    /// commit: one durable write for the whole batch), answering each in
    /// order, trimming execution history to `retention` per plugin. An
    /// event whose idempotency key was seen within
    /// [`IDEMPOTENCY_WINDOW_MS`] answers with the first event, not a new one.
    /// A schedule's event is stored only while the schedule's mark is older
    /// than the event's `occurred_at_ms` (the slot it fires for); otherwise
    /// another host fired that slot and it answers as a duplicate. A
    /// settled attempt of a delivery another host has taken over (this
    /// host's lease lapsed) is not applied and answers
    /// [`JournalAnswer::Skipped`].
    async fn commit_journal(
        &self,
        entries: Vec<JournalEntry>,
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError>;
    /// The event with this id.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// The delivery with this id.
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;
    /// The deliveries with these ids that exist, in the order asked.
    async fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError>;
    /// Deliveries matching `query`, newest first.
    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;
    /// Every delivery still queued, with its event, soonest due first.
    async fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError>;
    /// Claims up to `limit` queued deliveries that no running host holds,
    /// with their events, soonest due first: this host runs them, and
    /// holds them under a lease it renews ([`JournalRows::renew_leases`])
    /// until they are final. Deliveries this host queued itself (new
    /// events, retries, hand retries) are held from the moment they are
    /// committed and are never handed out by a claim. A delivery whose
    /// lease lapsed (its host died) is claimed by the next host that asks:
    /// at least once, with the same event id and its attempts counted.
    /// A backend one process owns (redb) hands out every queued delivery
    /// on the first claim and none after.
    async fn claim_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(Delivery, EventRecord)>, StoreError>;
    /// Extends the lease on every delivery this host holds; returns how many.
    async fn renew_leases(&self) -> Result<u64, StoreError>;
    /// Lets go of every delivery this host holds (it is stopping), so the
    /// next claim anywhere takes them without waiting for the lease to lapse.
    async fn release_leases(&self) -> Result<u64, StoreError>;
    /// Drops the oldest events whose deliveries are all final, past `keep`
    /// events or older than `max_age_ms`; returns how many went.
    async fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError>;
    /// Stores execution records outside a journal batch.
    async fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        retention: HistoryBudget,
    ) -> Result<(), StoreError>;
    /// The execution record with this id.
    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// Execution records matching `query`, newest first.
    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, StoreError>;
}

/// API triggers, schedule marks and webhook secrets (sealed).
#[async_trait]
pub trait TriggerRows: Send + Sync {
    /// Every API-registered trigger.
    async fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Stores (or replaces) an API trigger.
    async fn put_trigger(&self, id: &str, trigger: &serde_json::Value) -> Result<(), StoreError>;
    /// Removes these triggers; returns how many existed.
    async fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError>;
    /// Each schedule's last fire time.
    async fn schedule_marks(&self) -> Result<std::collections::HashMap<String, u64>, StoreError>;
    /// Records when a schedule last fired (or started counting). A mark
    /// never moves back: a host that starts counting a schedule late must
    /// not undo a slot another host already fired.
    async fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError>;
    /// The sealed secret of webhook `plugin/hook`.
    async fn sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Stores a webhook's sealed secret, replacing any earlier one.
    async fn set_sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        sealed: &str,
    ) -> Result<(), StoreError>;
    /// Forgets a deleted plugin's webhook secrets, schedule marks and API
    /// triggers.
    async fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError>;
}

/// The delivery after `change` (and, with `record`, the attempt it ran),
/// or `None` when the change does not apply: only a requeue applies to a
/// final delivery, and only to one.
pub fn apply_change(
    delivery: Delivery,
    change: &DeliveryChange,
    record: Option<&ExecutionRecord>,
    now: u64,
) -> Option<Delivery> {
    let mut after = delivery;
    let requeue = matches!(change, DeliveryChange::Requeue { .. });
    if requeue != after.state.is_final() {
        return None;
    }
    if let Some(record) = record {
        after.attempts += 1;
        after.executions.push(record.id.clone());
    }
    after.updated_at_ms = now;
    match change {
        DeliveryChange::Succeeded => {
            after.state = DeliveryState::Succeeded;
            after.last_error = None;
        }
        DeliveryChange::Retry { at_ms, error } => {
            after.state = DeliveryState::Queued;
            after.next_attempt_at_ms = *at_ms;
            after.last_error = Some(error.clone());
        }
        DeliveryChange::Dead { error } => {
            after.state = DeliveryState::Dead;
            after.last_error = Some(error.clone());
        }
        DeliveryChange::Cancelled { reason } => {
            after.state = DeliveryState::Cancelled;
            after.last_error = Some(reason.clone());
        }
        DeliveryChange::Requeue { at_ms } => {
            after.state = DeliveryState::Queued;
            after.next_attempt_at_ms = *at_ms;
            // One more attempt than it has made: a hand retry runs once.
            after.max_retries = after.attempts;
        }
    }
    Some(after)
}
