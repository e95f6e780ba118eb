//! Events and their deliveries, durably: the events table (with an
//! idempotency index kept 24 h), one delivery per (event, plugin) with its
//! state, the queue of deliveries still to run ordered by when they are due,
//! the dead-letter index, API-registered triggers, the last fire time of
//! each schedule and the sealed webhook secrets. Everything that changes a
//! delivery is applied by [`Store::commit_journal`], one transaction for a
//! whole batch, so accepting an event never costs one fsync of its own.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, db};
use crate::encoded::{Encoded, encode};
use junction_core::ExecutionRecord;

/// Sequence number → event as JSON.
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Event id → sequence number.
pub(super) const EVENT_IDS: TableDefinition<&str, u64> = TableDefinition::new("event_ids");
/// Idempotency key → (event id, accepted at).
pub(super) const IDEMPOTENCY: TableDefinition<&str, (&str, u64)> =
    TableDefinition::new("event_idempotency");
/// Delivery id → delivery as JSON.
pub(super) const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// (due at, delivery id): every delivery that has yet to succeed, die or be cancelled.
pub(super) const QUEUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("delivery_queue");
/// Delivery id → when it was dead-lettered.
pub(super) const DEAD: TableDefinition<&str, u64> = TableDefinition::new("dead_letters");
/// Trigger id → an API-registered trigger as JSON.
pub(super) const TRIGGERS: TableDefinition<&str, &[u8]> = TableDefinition::new("triggers");
/// Schedule key → when it last fired.
pub(super) const SCHEDULES: TableDefinition<&str, u64> = TableDefinition::new("schedules");
/// `plugin/hook` → the hook's sealed secret.
pub(super) const HOOK_SECRETS: TableDefinition<&str, &str> = TableDefinition::new("hook_secrets");

const NEXT_EVENT_SEQ: &str = "next_event_seq";
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
    /// An execution record (from an invoke, or a delivery's attempt).
    Execution(Box<Encoded<ExecutionRecord>>),
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
    Kv(Box<super::KvWrite>),
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
    Kv(super::KvOutcome),
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(what.to_owned(), e.to_string()))
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl Store {
    /// Applies a batch of journal entries in one transaction, trimming
    /// execution history to `retention` records per plugin.
    pub fn commit_journal(
        &self,
        entries: &[JournalEntry],
        retention: super::HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        let now = super::now_ms();
        let txn = self.db.begin_write().map_err(db)?;
        let mut answers = Vec::with_capacity(entries.len());
        let mut records: Vec<&Encoded<ExecutionRecord>> = Vec::new();
        {
            let mut meta = txn.open_table(super::META).map_err(db)?;
            let mut next_seq: u64 = match meta.get(NEXT_EVENT_SEQ).map_err(db)? {
                Some(v) => v.value().parse().map_err(|e: std::num::ParseIntError| {
                    StoreError::Corrupt(format!("meta/{NEXT_EVENT_SEQ}"), e.to_string())
                })?,
                None => 1,
            };
            let start_seq = next_seq;
            let mut events = txn.open_table(EVENTS).map_err(db)?;
            let mut event_ids = txn.open_table(EVENT_IDS).map_err(db)?;
            let mut keys = txn.open_table(IDEMPOTENCY).map_err(db)?;
            let mut tables = DeliveryTables {
                deliveries: txn.open_table(DELIVERIES).map_err(db)?,
                queue: txn.open_table(QUEUE).map_err(db)?,
                dead: txn.open_table(DEAD).map_err(db)?,
            };
            let mut schedules = txn.open_table(SCHEDULES).map_err(db)?;
            for entry in entries {
                let answer = match entry {
                    JournalEntry::Execution(record) => {
                        records.push(record);
                        JournalAnswer::Written
                    }
                    JournalEntry::Event(new) => {
                        let event = &new.event.value;
                        let earlier = match &event.idempotency_key {
                            Some(key) => keys
                                .get(key.as_str())
                                .map_err(db)?
                                .map(|v| {
                                    let (id, at) = v.value();
                                    (id.to_owned(), at)
                                })
                                .filter(|(_, at)| now.saturating_sub(*at) < IDEMPOTENCY_WINDOW_MS),
                            None => None,
                        };
                        if let Some((id, _)) = earlier {
                            let matched = match event_ids.get(id.as_str()).map_err(db)? {
                                Some(seq) => match events.get(seq.value()).map_err(db)? {
                                    Some(bytes) => decode::<EventRecord>("events", bytes.value())?
                                        .deliveries
                                        .len(),
                                    None => 0,
                                },
                                None => 0,
                            };
                            JournalAnswer::Event {
                                id,
                                matched,
                                duplicate: true,
                            }
                        } else {
                            if let Some(key) = &event.idempotency_key {
                                keys.insert(key.as_str(), (event.id.as_str(), now))
                                    .map_err(db)?;
                            }
                            events
                                .insert(next_seq, new.event.bytes.as_slice())
                                .map_err(db)?;
                            event_ids.insert(event.id.as_str(), next_seq).map_err(db)?;
                            next_seq += 1;
                            for encoded in &new.deliveries {
                                put_delivery(&mut tables, None, encoded, now)?;
                            }
                            if let Some((key, at)) = &new.schedule_mark {
                                schedules.insert(key.as_str(), *at).map_err(db)?;
                            }
                            JournalAnswer::Event {
                                id: event.id.clone(),
                                matched: new.deliveries.len(),
                                duplicate: false,
                            }
                        }
                    }
                    JournalEntry::Settled {
                        delivery,
                        previous_due_ms,
                        record,
                    } => {
                        if let Some(record) = record {
                            records.push(record);
                        }
                        // The dispatcher settles only queued deliveries.
                        let before = (*previous_due_ms, DeliveryState::Queued);
                        put_delivery(&mut tables, Some(before), delivery, now)?;
                        JournalAnswer::Written
                    }
                    JournalEntry::Delivery { id, change } => {
                        let current = match tables.deliveries.get(id.as_str()).map_err(db)? {
                            Some(bytes) => Some(decode::<Delivery>(
                                &format!("deliveries/{id}"),
                                bytes.value(),
                            )?),
                            None => None,
                        };
                        match current.and_then(|d| {
                            let before = d.clone();
                            apply_change(d, change, None, now).map(|after| (before, after))
                        }) {
                            Some((before, after)) => {
                                let before = (before.next_attempt_at_ms, before.state);
                                put_delivery(
                                    &mut tables,
                                    Some(before),
                                    &Encoded::new(after)?,
                                    now,
                                )?;
                                JournalAnswer::Written
                            }
                            None => JournalAnswer::Skipped,
                        }
                    }
                    JournalEntry::Kv(write) => JournalAnswer::Kv(super::kv::apply_in(&txn, write)?),
                };
                answers.push(answer);
            }
            if next_seq != start_seq {
                meta.insert(NEXT_EVENT_SEQ, next_seq.to_string().as_str())
                    .map_err(db)?;
            }
        }
        if !records.is_empty() {
            super::executions::insert_in(&txn, &records, retention)?;
        }
        txn.commit().map_err(db)?;
        Ok(answers)
    }

    /// The event with this id.
    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let ids = txn.open_table(EVENT_IDS).map_err(db)?;
        let Some(seq) = ids.get(id).map_err(db)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let events = txn.open_table(EVENTS).map_err(db)?;
        match events.get(seq).map_err(db)? {
            Some(bytes) => decode(&format!("events/{seq}"), bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The delivery with this id.
    pub fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(DELIVERIES).map_err(db)?;
        match table.get(id).map_err(db)? {
            Some(bytes) => decode(&format!("deliveries/{id}"), bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// These deliveries, in the order given (missing ones left out).
    pub fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(DELIVERIES).map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) = table.get(id.as_str()).map_err(db)? {
                out.push(decode(&format!("deliveries/{id}"), bytes.value())?);
            }
        }
        Ok(out)
    }

    /// Deliveries matching `query`. Dead letters come from their index;
    /// queued ones from the queue in due order; others by scanning.
    pub fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(DELIVERIES).map_err(db)?;
        let wanted = |d: &Delivery| {
            query.state.is_none_or(|s| s == d.state)
                && query.plugin.as_ref().is_none_or(|p| *p == d.plugin)
        };
        let mut out = Vec::new();
        let dead_table = txn.open_table(DEAD).map_err(db)?;
        let queue_table = txn.open_table(QUEUE).map_err(db)?;
        let ids: Box<dyn Iterator<Item = Result<String, StoreError>>> = match query.state {
            Some(DeliveryState::Dead) => Box::new(
                dead_table
                    .iter()
                    .map_err(db)?
                    .map(|row| row.map(|(k, _)| k.value().to_owned()).map_err(db)),
            ),
            Some(DeliveryState::Queued) => Box::new(
                queue_table
                    .iter()
                    .map_err(db)?
                    .map(|row| row.map(|(k, _)| k.value().1.to_owned()).map_err(db)),
            ),
            _ => Box::new(
                table
                    .iter()
                    .map_err(db)?
                    .map(|row| row.map(|(k, _)| k.value().to_owned()).map_err(db)),
            ),
        };
        for id in ids {
            if out.len() >= query.limit {
                break;
            }
            let id = id?;
            if let Some(bytes) = table.get(id.as_str()).map_err(db)? {
                let delivery: Delivery = decode(&format!("deliveries/{id}"), bytes.value())?;
                if wanted(&delivery) {
                    out.push(delivery);
                }
            }
        }
        Ok(out)
    }

    /// Every delivery still to run, with its event, in due order: what the
    /// dispatcher reloads on start (deliveries that were running at a crash
    /// are among them and run again).
    pub fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let queue = txn.open_table(QUEUE).map_err(db)?;
        let table = txn.open_table(DELIVERIES).map_err(db)?;
        let ids = txn.open_table(EVENT_IDS).map_err(db)?;
        let events = txn.open_table(EVENTS).map_err(db)?;
        let mut cache: std::collections::HashMap<String, EventRecord> = Default::default();
        let mut out = Vec::new();
        for row in queue.iter().map_err(db)? {
            let (key, _) = row.map_err(db)?;
            let id = key.value().1;
            let Some(bytes) = table.get(id).map_err(db)? else {
                continue;
            };
            let delivery: Delivery = decode(&format!("deliveries/{id}"), bytes.value())?;
            if !cache.contains_key(&delivery.event_id) {
                let Some(seq) = ids.get(delivery.event_id.as_str()).map_err(db)? else {
                    continue;
                };
                let Some(bytes) = events.get(seq.value()).map_err(db)? else {
                    continue;
                };
                let event: EventRecord = decode("events", bytes.value())?;
                cache.insert(event.id.clone(), event);
            }
            if let Some(event) = cache.get(&delivery.event_id) {
                out.push((delivery, event.clone()));
            }
        }
        Ok(out)
    }

    /// Prunes events: beyond the newest `keep`, the oldest whose deliveries
    /// all succeeded or were cancelled; and, whatever their number, those
    /// accepted more than `max_age_ms` ago whose deliveries are all finished,
    /// dead ones included (their dead letters go with them). Idempotency
    /// keys outlive their events for their full window and are dropped after
    /// it. Returns how many events were removed.
    pub fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError> {
        let now = super::now_ms();
        let cutoff = now.saturating_sub(max_age_ms);
        let txn = self.db.begin_write().map_err(db)?;
        let mut removed = 0;
        {
            let mut events = txn.open_table(EVENTS).map_err(db)?;
            let mut ids = txn.open_table(EVENT_IDS).map_err(db)?;
            let mut deliveries = txn.open_table(DELIVERIES).map_err(db)?;
            let mut dead = txn.open_table(DEAD).map_err(db)?;
            let mut keys = txn.open_table(IDEMPOTENCY).map_err(db)?;
            let first = events.first().map_err(db)?.map(|(k, _)| k.value());
            let last = events.last().map_err(db)?.map(|(k, _)| k.value());
            if let (Some(first), Some(last)) = (first, last) {
                let excess = (last - first + 1).saturating_sub(keep);
                let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
                for row in events.range(first..).map_err(db)? {
                    let (seq, bytes) = row.map_err(db)?;
                    let seq = seq.value();
                    let over_count = seq < first + excess;
                    if !over_count {
                        // Past the excess only old events are candidates;
                        // events are in acceptance order, so stop at the first young one.
                        let event: EventRecord = decode(&format!("events/{seq}"), bytes.value())?;
                        if event.accepted_at_ms >= cutoff {
                            break;
                        }
                    }
                    candidates.push((seq, bytes.value().to_vec()));
                }
                'events: for (seq, bytes) in candidates {
                    let event: EventRecord = decode(&format!("events/{seq}"), &bytes)?;
                    let old = event.accepted_at_ms < cutoff;
                    for id in &event.deliveries {
                        if let Some(bytes) = deliveries.get(id.as_str()).map_err(db)? {
                            let delivery: Delivery = decode("deliveries", bytes.value())?;
                            let finished = match delivery.state {
                                DeliveryState::Succeeded | DeliveryState::Cancelled => true,
                                // A dead letter waits for a retry by hand, but not for ever.
                                DeliveryState::Dead => old,
                                _ => false,
                            };
                            if !finished {
                                continue 'events;
                            }
                        }
                    }
                    for id in &event.deliveries {
                        deliveries.remove(id.as_str()).map_err(db)?;
                        dead.remove(id.as_str()).map_err(db)?;
                    }
                    events.remove(seq).map_err(db)?;
                    ids.remove(event.id.as_str()).map_err(db)?;
                    removed += 1;
                }
            }
            // Keys past their window go, whether or not their event is still kept.
            keys.retain(|_, (_, at)| now.saturating_sub(at) < IDEMPOTENCY_WINDOW_MS)
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(removed)
    }

    /// Every API-registered trigger as stored JSON.
    pub fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(TRIGGERS).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (id, bytes) = row.map_err(db)?;
            out.push(decode(&format!("triggers/{}", id.value()), bytes.value())?);
        }
        Ok(out)
    }

    /// Stores an API-registered trigger.
    pub fn put_trigger(&self, id: &str, trigger: &serde_json::Value) -> Result<(), StoreError> {
        let bytes = encode("triggers", trigger)?;
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(TRIGGERS)
            .map_err(db)?
            .insert(id, bytes.as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// Removes API-registered triggers; returns how many existed.
    pub fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let mut removed = 0;
        {
            let mut table = txn.open_table(TRIGGERS).map_err(db)?;
            for id in ids {
                if table.remove(id.as_str()).map_err(db)?.is_some() {
                    removed += 1;
                }
            }
        }
        txn.commit().map_err(db)?;
        Ok(removed)
    }

    /// When each schedule last fired.
    pub fn schedule_marks(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SCHEDULES).map_err(db)?;
        let mut out = std::collections::HashMap::new();
        for row in table.iter().map_err(db)? {
            let (key, at) = row.map_err(db)?;
            out.insert(key.value().to_owned(), at.value());
        }
        Ok(out)
    }

    /// Records when a schedule last fired (or was first seen).
    pub fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(SCHEDULES)
            .map_err(db)?
            .insert(key, at_ms)
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// The webhook's secret, opened.
    pub fn hook_secret(
        &self,
        plugin: &str,
        hook: &str,
    ) -> Result<Option<super::Secret>, StoreError> {
        let key = format!("{plugin}/{hook}");
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(HOOK_SECRETS).map_err(db)?;
        let Some(sealed) = table.get(key.as_str()).map_err(db)? else {
            return Ok(None);
        };
        let secret = self
            .cipher()
            .open(sealed.value(), &format!("hooks/{key}"))?;
        Ok(Some(secret))
    }

    /// Seals and stores a webhook's secret, replacing any earlier one.
    pub fn set_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        secret: &super::Secret,
    ) -> Result<(), StoreError> {
        let key = format!("{plugin}/{hook}");
        let sealed = self.cipher().seal(secret, &format!("hooks/{key}"))?;
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(HOOK_SECRETS)
            .map_err(db)?
            .insert(key.as_str(), sealed.as_str())
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// Forgets a plugin's webhook secrets and API triggers (it was deleted).
    pub fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError> {
        let prefix = format!("{plugin}/");
        let txn = self.db.begin_write().map_err(db)?;
        {
            remove_prefixed(&mut txn.open_table(HOOK_SECRETS).map_err(db)?, &prefix)?;
            remove_prefixed(&mut txn.open_table(SCHEDULES).map_err(db)?, &prefix)?;
            let mut triggers = txn.open_table(TRIGGERS).map_err(db)?;
            let mut doomed = Vec::new();
            for row in triggers.iter().map_err(db)? {
                let (id, bytes) = row.map_err(db)?;
                let value: serde_json::Value = decode("triggers", bytes.value())?;
                if value["plugin"].as_str() == Some(plugin) {
                    doomed.push(id.value().to_owned());
                }
            }
            for id in doomed {
                triggers.remove(id.as_str()).map_err(db)?;
            }
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

/// The tables one delivery's state lives in.
struct DeliveryTables<'txn> {
    deliveries: redb::Table<'txn, &'static str, &'static [u8]>,
    queue: redb::Table<'txn, (u64, &'static str), ()>,
    dead: redb::Table<'txn, &'static str, u64>,
}

/// Stores a delivery's new state: the row, its queue entry (moved to its new
/// due time, or dropped once it is final) and its dead-letter entry.
/// `before` is its previous due time and state, absent for a new one.
fn put_delivery(
    tables: &mut DeliveryTables<'_>,
    before: Option<(u64, DeliveryState)>,
    delivery: &Encoded<Delivery>,
    now: u64,
) -> Result<(), StoreError> {
    let after = &delivery.value;
    let id = after.id.as_str();
    if let Some((due, _)) = before {
        tables.queue.remove((due, id)).map_err(db)?;
    }
    if after.state == DeliveryState::Queued {
        tables
            .queue
            .insert((after.next_attempt_at_ms, id), ())
            .map_err(db)?;
    }
    if after.state == DeliveryState::Dead {
        tables.dead.insert(id, now).map_err(db)?;
    } else if before.is_some_and(|(_, state)| state == DeliveryState::Dead) {
        tables.dead.remove(id).map_err(db)?;
    }
    tables
        .deliveries
        .insert(id, delivery.bytes.as_slice())
        .map_err(db)?;
    Ok(())
}

/// Removes every row whose key starts with `prefix`.
fn remove_prefixed<V: redb::Value + 'static>(
    table: &mut redb::Table<&str, V>,
    prefix: &str,
) -> Result<(), StoreError> {
    let keys: Vec<String> = table
        .range(prefix..)
        .map_err(db)?
        .map(|row| row.map(|(k, _)| k.value().to_owned()))
        .take_while(|key| key.as_ref().map_or(true, |k| k.starts_with(prefix)))
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for key in keys {
        table.remove(key.as_str()).map_err(db)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn delivery(id: &str, due: u64) -> Delivery {
        Delivery {
            id: id.into(),
            event_id: "e1".into(),
            event_kind: "k".into(),
            plugin: "p".into(),
            state: DeliveryState::Queued,
            attempts: 0,
            max_retries: 1,
            next_attempt_at_ms: due,
            created_at_ms: due,
            updated_at_ms: due,
            last_error: None,
            executions: vec![],
        }
    }

    #[test]
    fn forgetting_a_plugin_keeps_its_namesakes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for plugin in ["a", "ab"] {
            store
                .set_hook_secret(plugin, "x", &Secret::new("s".repeat(20)))
                .unwrap();
            store
                .set_schedule_mark(&format!("{plugin}/* * * * *@UTC"), 1)
                .unwrap();
        }
        store.forget_plugin_events("a").unwrap();
        assert!(store.hook_secret("a", "x").unwrap().is_none());
        assert!(store.hook_secret("ab", "x").unwrap().is_some());
        let marks = store.schedule_marks().unwrap();
        assert_eq!(marks.keys().collect::<Vec<_>>(), ["ab/* * * * *@UTC"]);
    }

    #[test]
    fn idempotency_keys_and_hand_retries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let event = |id: &str| EventRecord {
            id: id.into(),
            kind: "k".into(),
            payload: "{}".into(),
            source: "api".into(),
            occurred_at_ms: 1,
            accepted_at_ms: 1,
            idempotency_key: Some("key-1".into()),
            deliveries: vec![format!("d-{id}")],
        };
        let new = |id: &str| {
            JournalEntry::Event(Box::new(NewEvent {
                event: Encoded::new(event(id)).unwrap(),
                deliveries: vec![Encoded::new(delivery(&format!("d-{id}"), 5)).unwrap()],
                schedule_mark: None,
            }))
        };
        // Two events with one key in one batch: the second is the first.
        let answers = store
            .commit_journal(&[new("e1"), new("e2")], crate::HistoryBudget::records(10))
            .unwrap();
        assert_eq!(
            answers[1],
            JournalAnswer::Event {
                id: "e1".into(),
                matched: 1,
                duplicate: true
            }
        );
        assert!(store.event("e2").unwrap().is_none());
        assert_eq!(store.pending_deliveries().unwrap().len(), 1);

        // A hand retry applies to a dead delivery only, and runs once more.
        let dead = DeliveryChange::Dead {
            error: "boom".into(),
        };
        let requeue = DeliveryChange::Requeue { at_ms: 9 };
        let queued = JournalEntry::Delivery {
            id: "d-e1".into(),
            change: requeue.clone(),
        };
        assert_eq!(
            store
                .commit_journal(&[queued], crate::HistoryBudget::records(10))
                .unwrap(),
            [JournalAnswer::Skipped]
        );
        let died = JournalEntry::Delivery {
            id: "d-e1".into(),
            change: dead,
        };
        store
            .commit_journal(&[died], crate::HistoryBudget::records(10))
            .unwrap();
        let listed = store
            .deliveries(&DeliveryQuery {
                state: Some(DeliveryState::Dead),
                plugin: None,
                limit: 10,
            })
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert!(store.pending_deliveries().unwrap().is_empty());
        let again = JournalEntry::Delivery {
            id: "d-e1".into(),
            change: requeue,
        };
        store
            .commit_journal(&[again], crate::HistoryBudget::records(10))
            .unwrap();
        let back = store.delivery("d-e1").unwrap().unwrap();
        assert_eq!(back.state, DeliveryState::Queued);
        assert_eq!(back.max_retries, back.attempts);
        assert_eq!(store.pending_deliveries().unwrap().len(), 1);
        assert!(
            store
                .deliveries(&DeliveryQuery {
                    state: Some(DeliveryState::Dead),
                    plugin: None,
                    limit: 10
                })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn old_finished_events_go_with_their_dead_letters_and_keys_outlive_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = crate::now_ms();
        let day = 24 * 3600 * 1000;
        let event = |id: &str, accepted_at_ms: u64, key: Option<&str>| {
            JournalEntry::Event(Box::new(NewEvent {
                event: Encoded::new(EventRecord {
                    id: id.into(),
                    kind: "k".into(),
                    payload: "{}".into(),
                    source: "api".into(),
                    occurred_at_ms: accepted_at_ms,
                    accepted_at_ms,
                    idempotency_key: key.map(str::to_owned),
                    deliveries: vec![format!("d-{id}")],
                })
                .unwrap(),
                deliveries: vec![Encoded::new(delivery(&format!("d-{id}"), 0)).unwrap()],
                schedule_mark: None,
            }))
        };
        let budget = crate::HistoryBudget::records(10);
        store
            .commit_journal(
                &[
                    // In the order they were accepted.
                    event("old", now - 10 * day, None),
                    event("keyed", now - 9 * day, Some("k-1")),
                    event("recent", now - day, None),
                ],
                budget,
            )
            .unwrap();
        for id in ["old", "recent", "keyed"] {
            let dead = JournalEntry::Delivery {
                id: format!("d-{id}"),
                change: DeliveryChange::Dead {
                    error: "boom".into(),
                },
            };
            store.commit_journal(&[dead], budget).unwrap();
        }
        // Count is not the reason here: 3 events, 100 kept.
        let removed = store.prune_events(100, 7 * day).unwrap();
        assert_eq!(removed, 2, "the two old events, dead letters and all");
        assert!(store.event("old").unwrap().is_none());
        assert!(store.delivery("d-old").unwrap().is_none());
        assert!(
            store.event("recent").unwrap().is_some(),
            "a recent dead letter stays"
        );
        let dead = store
            .deliveries(&DeliveryQuery {
                state: Some(DeliveryState::Dead),
                plugin: None,
                limit: 10,
            })
            .unwrap();
        assert_eq!(dead.len(), 1);
        // The key was accepted just now (its window runs from then): still
        // honoured although its event is gone.
        let again = store
            .commit_journal(&[event("keyed-again", now, Some("k-1"))], budget)
            .unwrap();
        assert!(
            matches!(
                &again[0],
                JournalAnswer::Event {
                    duplicate: true,
                    ..
                }
            ),
            "{again:?}"
        );
    }
}
