//! Events and their deliveries in redb: the events table (with an
//! idempotency index kept 24 h), one delivery per (event, plugin) with its
//! state, the queue of deliveries still to run ordered by when they are due,
//! the dead-letter index, API-registered triggers, the last fire time of
//! each schedule and the sealed webhook secrets. Everything that changes a
//! delivery is applied by `commit_journal`, one transaction for a whole
//! batch, so accepting an event never costs one fsync of its own.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Deserialize;

use super::{Redb, RedbBackend, db};
use crate::StoreError;
use crate::encoded::{Encoded, encode};
use crate::journal::{
    Delivery, DeliveryQuery, DeliveryState, EventRecord, ExecutionQuery, HistoryBudget,
    IDEMPOTENCY_WINDOW_MS, JournalAnswer, JournalEntry, apply_change,
};
use junction_core::ExecutionRecord;

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(what.to_owned(), e.to_string()))
}

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

/// What pruning reads of a stored event: the payload, often most of its
/// bytes, is scanned past without being kept, and nothing else is copied
/// out of the page.
#[derive(serde::Deserialize)]
struct PruneView {
    id: String,
    accepted_at_ms: u64,
    #[serde(default)]
    deliveries: Vec<String>,
}

impl Redb {
    /// Applies a batch of journal entries in one transaction, trimming
    /// execution history to `retention` records per plugin.
    fn commit_journal(
        &self,
        entries: &[JournalEntry],
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        let now = junction_core::now_ms();
        let txn = self.db.begin_write().map_err(db)?;
        let mut answers = Vec::with_capacity(entries.len());
        // A batch of invokes' records alone (what an invoke flood commits)
        // touches no event table: opening the seven event tables and reading
        // the next event number would be work for nothing.
        let records_only: Option<Vec<&Encoded<ExecutionRecord>>> = entries
            .iter()
            .map(|entry| match entry {
                JournalEntry::Execution(record) => Some(&**record),
                _ => None,
            })
            .collect();
        let mut records = Vec::new();
        if let Some(only) = records_only {
            answers.resize(only.len(), JournalAnswer::Written);
            records = only;
        } else {
            let meta = txn.open_table(super::META).map_err(db)?;
            let mut events = txn.open_table(EVENTS).map_err(db)?;
            let mut next_seq = super::next_seq(&meta, NEXT_EVENT_SEQ, &events)?;
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
                        // Another host cannot fire a slot here (one
                        // process owns the file), but a slot fired before
                        // is still not fired twice.
                        let slot_taken = match &new.schedule_mark {
                            Some((key, _)) => schedules
                                .get(key.as_str())
                                .map_err(db)?
                                .is_some_and(|mark| mark.value() >= event.occurred_at_ms),
                            None => false,
                        };
                        if slot_taken {
                            JournalAnswer::Event {
                                id: event.id.clone(),
                                matched: 0,
                                duplicate: true,
                            }
                        } else if let Some((id, _)) = earlier {
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
        }
        if !records.is_empty() {
            super::executions::insert_in(&txn, &records, retention)?;
        }
        txn.commit().map_err(db)?;
        Ok(answers)
    }

    /// The event with this id.
    fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
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
    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(DELIVERIES).map_err(db)?;
        match table.get(id).map_err(db)? {
            Some(bytes) => decode(&format!("deliveries/{id}"), bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// These deliveries, in the order given (missing ones left out).
    fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError> {
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
    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        read_deliveries(&self.db.begin_read().map_err(db)?, query)
    }

    /// Every delivery still to run, with its event, in due order: what the
    /// dispatcher reloads on start (deliveries that were running at a crash
    /// are among them and run again).
    fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
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
    fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError> {
        let now = junction_core::now_ms();
        let cutoff = now.saturating_sub(max_age_ms);
        let txn = self.db.begin_write().map_err(db)?;
        let mut removed = 0;
        {
            let mut events = txn.open_table(EVENTS).map_err(db)?;
            let mut ids = txn.open_table(EVENT_IDS).map_err(db)?;
            let mut deliveries = txn.open_table(DELIVERIES).map_err(db)?;
            let mut dead = txn.open_table(DEAD).map_err(db)?;
            let mut keys = txn.open_table(IDEMPOTENCY).map_err(db)?;
            let mut meta = txn.open_table(super::META).map_err(db)?;
            let first = events.first().map_err(db)?.map(|(k, _)| k.value());
            let last = events.last().map_err(db)?.map(|(k, _)| k.value());
            let next = super::next_seq(&meta, NEXT_EVENT_SEQ, &events)?;
            if let (Some(first), Some(last)) = (first, last) {
                let excess = (last - first + 1).saturating_sub(keep);
                let mut candidates: Vec<(u64, PruneView)> = Vec::new();
                for row in events.range(first..).map_err(db)? {
                    let (seq, bytes) = row.map_err(db)?;
                    let seq = seq.value();
                    let event: PruneView = serde_json::from_slice(bytes.value())
                        .map_err(|e| StoreError::Corrupt(format!("events/{seq}"), e.to_string()))?;
                    // Past the excess only old events are candidates; events
                    // are in acceptance order, so stop at the first young one.
                    if seq >= first + excess && event.accepted_at_ms >= cutoff {
                        break;
                    }
                    candidates.push((seq, event));
                }
                'events: for (seq, event) in candidates {
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
            if removed > 0 {
                super::keep_seq_floor(&mut meta, NEXT_EVENT_SEQ, &events, next)?;
            }
            // Keys past their window go, whether or not their event is still kept.
            keys.retain(|_, (_, at)| now.saturating_sub(at) < IDEMPOTENCY_WINDOW_MS)
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(removed)
    }

    /// Every API-registered trigger as stored JSON.
    fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError> {
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
    fn put_trigger(&self, id: &str, trigger: &serde_json::Value) -> Result<(), StoreError> {
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
    fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError> {
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
    fn schedule_marks(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
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
    fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(SCHEDULES).map_err(db)?;
            let stored = table.get(key).map_err(db)?.map(|v| v.value());
            let at_ms = stored.map_or(at_ms, |stored| stored.max(at_ms));
            table.insert(key, at_ms).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn sealed_hook_secret(&self, plugin: &str, hook: &str) -> Result<Option<String>, StoreError> {
        let key = format!("{plugin}/{hook}");
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(HOOK_SECRETS).map_err(db)?;
        Ok(table
            .get(key.as_str())
            .map_err(db)?
            .map(|v| v.value().to_owned()))
    }

    fn set_sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        let key = format!("{plugin}/{hook}");
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(HOOK_SECRETS)
            .map_err(db)?
            .insert(key.as_str(), sealed)
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// Forgets a plugin's webhook secrets and API triggers (it was deleted).
    fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError> {
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

#[async_trait]
impl crate::journal::JournalRows for RedbBackend {
    async fn commit_journal(
        &self,
        entries: Vec<JournalEntry>,
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        self.run(move |redb| redb.commit_journal(&entries, retention))
            .await
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |redb| redb.event(&id)).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = id.to_owned();
        self.run(move |redb| redb.delivery(&id)).await
    }

    async fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError> {
        let ids = ids.to_vec();
        self.run(move |redb| redb.deliveries_by_id(&ids)).await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let query = query.clone();
        self.run(move |redb| redb.deliveries(&query)).await
    }

    async fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        self.run(|redb| redb.pending_deliveries()).await
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        use std::sync::atomic::Ordering;
        // One process owns the file: whatever is queued at the first claim
        // is handed out then, and everything queued later was queued by
        // this process, which already holds it.
        if self.0.claimed.swap(true, Ordering::AcqRel) {
            return Ok(Vec::new());
        }
        // All of it, whatever `limit` says: there is no second claim.
        let _ = limit;
        self.run(|redb| redb.pending_deliveries()).await
    }

    async fn renew_leases(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn release_leases(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError> {
        self.run(move |redb| redb.prune_events(keep, max_age_ms))
            .await
    }

    async fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        retention: HistoryBudget,
    ) -> Result<(), StoreError> {
        self.run(move |redb| redb.insert_executions(records, retention))
            .await
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |redb| redb.execution(&id)).await
    }

    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, StoreError> {
        let query = query.clone();
        self.run(move |redb| redb.executions(&query)).await
    }
}

#[async_trait]
impl crate::journal::TriggerRows for RedbBackend {
    async fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        self.run(|redb| redb.api_triggers()).await
    }

    async fn put_trigger(&self, id: &str, trigger: &serde_json::Value) -> Result<(), StoreError> {
        let (id, trigger) = (id.to_owned(), trigger.clone());
        self.run(move |redb| redb.put_trigger(&id, &trigger)).await
    }

    async fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError> {
        let ids = ids.to_vec();
        self.run(move |redb| redb.delete_triggers(&ids)).await
    }

    async fn schedule_marks(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        self.run(|redb| redb.schedule_marks()).await
    }

    async fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |redb| redb.set_schedule_mark(&key, at_ms))
            .await
    }

    async fn sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
    ) -> Result<Option<String>, StoreError> {
        let (plugin, hook) = (plugin.to_owned(), hook.to_owned());
        self.run(move |redb| redb.sealed_hook_secret(&plugin, &hook))
            .await
    }

    async fn set_sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        let (plugin, hook, sealed) = (plugin.to_owned(), hook.to_owned(), sealed.to_owned());
        self.run(move |redb| redb.set_sealed_hook_secret(&plugin, &hook, &sealed))
            .await
    }

    async fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError> {
        let plugin = plugin.to_owned();
        self.run(move |redb| redb.forget_plugin_events(&plugin))
            .await
    }
}

/// Deliveries matching `query`, as of the read transaction `txn`. Dead
/// letters come from their index; queued ones from the queue in due order;
/// others by scanning.
pub(super) fn read_deliveries(
    txn: &redb::ReadTransaction,
    query: &DeliveryQuery,
) -> Result<Vec<Delivery>, StoreError> {
    let table = txn.open_table(DELIVERIES).map_err(db)?;
    let wanted = |d: &Delivery| {
        query.state.is_none_or(|s| s == d.state)
            && query.plugin.as_ref().is_none_or(|p| *p == d.plugin)
            && query
                .end_user
                .as_ref()
                .is_none_or(|u| Some(u) == d.end_user.as_ref())
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

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    /// The sequence number each id was stored under in `table`.
    fn seqs(redb: &super::Redb, table: redb::TableDefinition<&str, u64>, ids: &[&str]) -> Vec<u64> {
        let txn = redb.db.begin_read().unwrap();
        let table = txn.open_table(table).unwrap();
        ids.iter()
            .map(|id| table.get(*id).unwrap().expect("stored").value())
            .collect()
    }

    #[test]
    fn appends_leave_meta_alone_and_sequence_numbers_are_never_reused() {
        use crate::conformance::{BUDGET, event, record};
        use crate::encoded::Encoded;
        use crate::journal::JournalEntry;
        let dir = tempfile::tempdir().unwrap();
        let redb = super::Redb::open(dir.path()).unwrap();
        let day = 24 * 3600 * 1000;
        let old = junction_core::now_ms() - 10 * day;
        redb.commit_journal(&[event("e1", None, old, &[], 0)], BUDGET)
            .unwrap();
        redb.commit_journal(&[event("e2", None, old, &[], 0)], BUDGET)
            .unwrap();
        assert_eq!(seqs(&redb, super::EVENT_IDS, &["e1", "e2"]), [1, 2]);
        assert_eq!(redb.meta("next_event_seq").unwrap(), None);

        // Pruning takes the newest events too: their numbers stay taken.
        assert_eq!(redb.prune_events(100, 7 * day).unwrap(), 2);
        assert_eq!(redb.meta("next_event_seq").unwrap().as_deref(), Some("3"));
        let now = junction_core::now_ms();
        redb.commit_journal(&[event("e3", None, now, &[], 0)], BUDGET)
            .unwrap();
        redb.commit_journal(&[event("e4", None, now, &[], 0)], BUDGET)
            .unwrap();
        assert_eq!(seqs(&redb, super::EVENT_IDS, &["e3", "e4"]), [3, 4]);
        assert_eq!(redb.meta("next_event_seq").unwrap().as_deref(), Some("3"));

        // A file written by an older build kept the next number in meta.
        redb.set_meta("next_execution_seq", "40").unwrap();
        for ids in [&["x1", "x2"][..], &["x3"]] {
            let entries: Vec<JournalEntry> = ids
                .iter()
                .map(|id| {
                    let record = record(id, "p", true, 1, "out");
                    JournalEntry::Execution(std::sync::Arc::new(Encoded::new(record).unwrap()))
                })
                .collect();
            redb.commit_journal(&entries, BUDGET).unwrap();
        }
        assert_eq!(
            seqs(
                &redb,
                super::super::executions::EXECUTION_IDS,
                &["x1", "x2", "x3"]
            ),
            [40, 41, 42]
        );
        assert_eq!(
            redb.meta("next_execution_seq").unwrap().as_deref(),
            Some("40")
        );
    }
}
