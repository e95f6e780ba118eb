//! Events and their deliveries in PostgreSQL: events numbered in the order
//! accepted, idempotency keys kept 24 h, one row per delivery with its
//! state and due time (a partial index over the queued ones is the queue),
//! API-registered triggers, schedule marks and sealed webhook secrets.
//! A journal batch is one transaction, as on redb: one commit (one WAL
//! flush) for the whole batch. An idempotency key is claimed by inserting
//! it, so two hosts accepting the same key at once store one event.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Postgres, Prepared, big, decode, unbig};

/// How many times a journal batch runs before its conflict is reported.
const BATCH_ATTEMPTS: u32 = 5;
/// The advisory lock a host prunes the event history under.
const PRUNE_LOCK: i64 = 0x6a63_7072;
use crate::StoreError;
use crate::encoded::{Encoded, encode};
use crate::journal::{
    Delivery, DeliveryChange, DeliveryQuery, DeliveryState, EventRecord, ExecutionQuery,
    HistoryBudget, IDEMPOTENCY_WINDOW_MS, JournalAnswer, JournalEntry, NewEvent, apply_change,
};
use junction_core::ExecutionRecord;

type Txn<'a> = deadpool_postgres::Transaction<'a>;

/// Who holds the deliveries a batch queues, and until when.
#[derive(Clone, Copy)]
struct Lease<'a> {
    run: &'a str,
    until_ms: i64,
}

impl Lease<'_> {
    /// The holder and end of the lease a delivery in `state` is stored with:
    /// a queued one is this run's, a final one nobody's.
    fn for_state(&self, state: DeliveryState) -> (Option<&str>, i64) {
        if state == DeliveryState::Queued {
            (Some(self.run), self.until_ms)
        } else {
            (None, 0)
        }
    }
}

/// Stores new deliveries (held by this run while queued) in one statement.
async fn insert_deliveries(
    txn: &Txn<'_>,
    deliveries: &[&Encoded<Delivery>],
    lease: Lease<'_>,
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = deliveries.iter().map(|d| d.value.id.as_str()).collect();
    let events: Vec<&str> = deliveries
        .iter()
        .map(|d| d.value.event_id.as_str())
        .collect();
    let plugins: Vec<&str> = deliveries.iter().map(|d| d.value.plugin.as_str()).collect();
    let states: Vec<&str> = deliveries.iter().map(|d| d.value.state.as_str()).collect();
    let due: Vec<i64> = deliveries
        .iter()
        .map(|d| big(d.value.next_attempt_at_ms))
        .collect();
    let docs: Vec<&[u8]> = deliveries.iter().map(|d| d.bytes.as_slice()).collect();
    let (runs, untils): (Vec<Option<&str>>, Vec<i64>) = deliveries
        .iter()
        .map(|d| lease.for_state(d.value.state))
        .unzip();
    let end_users: Vec<Option<&str>> = deliveries
        .iter()
        .map(|d| d.value.end_user.as_deref())
        .collect();
    txn.run(
        "INSERT INTO deliveries (id, event_id, plugin, state, due_ms, doc, lease_run, lease_until_ms, end_user) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], $7::text[], $8::bigint[], $9::text[]) \
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, due_ms = EXCLUDED.due_ms, doc = EXCLUDED.doc, \
         lease_run = EXCLUDED.lease_run, lease_until_ms = EXCLUDED.lease_until_ms",
        &[&ids, &events, &plugins, &states, &due, &docs, &runs, &untils, &end_users],
    )
    .await?;
    Ok(())
}

/// Replaces a delivery's stored state. With `held`, only while this run
/// still holds it: `false` when another host took it over.
async fn replace_delivery(
    txn: &Txn<'_>,
    delivery: &Encoded<Delivery>,
    lease: Lease<'_>,
    held: bool,
) -> Result<bool, StoreError> {
    let after = &delivery.value;
    let (run, until) = lease.for_state(after.state);
    let changed = txn
        .run(
            "UPDATE deliveries SET state = $2, due_ms = $3, doc = $4, lease_run = $5, lease_until_ms = $6 \
             WHERE id = $1 AND (NOT $7 OR lease_run = $8)",
            &[
                &after.id,
                &after.state.as_str(),
                &big(after.next_attempt_at_ms),
                &delivery.bytes,
                &run,
                &until,
                &held,
                &lease.run,
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// How many deliveries the stored event `id` has (0 once it was pruned).
async fn delivery_count(txn: &Txn<'_>, id: &str) -> Result<usize, StoreError> {
    let row = txn
        .maybe_row("SELECT doc FROM events WHERE id = $1", &[&id])
        .await?;
    Ok(match row {
        Some(row) => decode::<EventRecord>(&format!("events/{id}"), row.get(0))?
            .deliveries
            .len(),
        None => 0,
    })
}

/// Accepts one event with its deliveries, or answers with the earlier
/// event that holds its idempotency key.
async fn accept(
    txn: &Txn<'_>,
    new: &NewEvent,
    now: u64,
    lease: Lease<'_>,
) -> Result<JournalAnswer, StoreError> {
    let event = &new.event.value;
    if let Some((key, at)) = &new.schedule_mark {
        // The mark moves forward only past the slot this event fires for;
        // the row lock makes hosts firing the same slot take turns, and
        // all but the first find it fired.
        let advanced = txn
            .maybe_row(
                "INSERT INTO schedule_marks (key, at_ms) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET at_ms = EXCLUDED.at_ms \
                 WHERE schedule_marks.at_ms < $3 RETURNING 1",
                &[key, &big(*at), &big(event.occurred_at_ms)],
            )
            .await?;
        if advanced.is_none() {
            return Ok(JournalAnswer::Event {
                id: event.id.clone(),
                matched: 0,
                duplicate: true,
            });
        }
    }
    if let Some(key) = &event.idempotency_key {
        let expired_before = big(now.saturating_sub(IDEMPOTENCY_WINDOW_MS));
        let claimed = txn
            .maybe_row(
                "INSERT INTO idempotency (key, event_id, accepted_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET event_id = EXCLUDED.event_id, \
                 accepted_at_ms = EXCLUDED.accepted_at_ms \
                 WHERE idempotency.accepted_at_ms <= $4 RETURNING 1",
                &[key, &event.id, &big(now), &expired_before],
            )
            .await?;
        if claimed.is_none() {
            let first: String = txn
                .row("SELECT event_id FROM idempotency WHERE key = $1", &[key])
                .await?
                .get(0);
            let matched = delivery_count(txn, &first).await?;
            return Ok(JournalAnswer::Event {
                id: first,
                matched,
                duplicate: true,
            });
        }
    }
    txn.run(
        "INSERT INTO events (id, accepted_at_ms, doc) VALUES ($1, $2, $3)",
        &[&event.id, &big(event.accepted_at_ms), &new.event.bytes],
    )
    .await?;
    let deliveries: Vec<&Encoded<Delivery>> = new.deliveries.iter().collect();
    insert_deliveries(txn, &deliveries, lease).await?;
    Ok(JournalAnswer::Event {
        id: event.id.clone(),
        matched: new.deliveries.len(),
        duplicate: false,
    })
}

/// Applies `change` to the stored delivery, if it still fits it.
async fn change(
    txn: &Txn<'_>,
    id: &str,
    change: &DeliveryChange,
    now: u64,
    lease: Lease<'_>,
) -> Result<JournalAnswer, StoreError> {
    let Some(row) = txn
        .maybe_row(
            "SELECT doc FROM deliveries WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Ok(JournalAnswer::Skipped);
    };
    let current: Delivery = decode(&format!("deliveries/{id}"), row.get(0))?;
    match apply_change(current, change, None, now) {
        Some(after) => {
            // A requeue by hand is run by the host that asked for it.
            replace_delivery(txn, &Encoded::new(after)?, lease, false).await?;
            Ok(JournalAnswer::Written)
        }
        None => Ok(JournalAnswer::Skipped),
    }
}

async fn set_mark(txn: &impl Prepared, key: &str, at_ms: u64) -> Result<(), StoreError> {
    txn.run(
        "INSERT INTO schedule_marks AS m (key, at_ms) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET at_ms = GREATEST(m.at_ms, EXCLUDED.at_ms)",
        &[&key, &big(at_ms)],
    )
    .await?;
    Ok(())
}

/// Rows of (delivery id, delivery, event id, event) as pairs, each event
/// decoded once however many of its deliveries come with it.
fn with_events(rows: &[tokio_postgres::Row]) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
    let mut events: HashMap<String, EventRecord> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let delivery: Delivery =
            decode(&format!("deliveries/{}", row.get::<_, &str>(0)), row.get(1))?;
        let event_id: &str = row.get(2);
        let event = match events.get(event_id) {
            Some(event) => event.clone(),
            None => {
                let event: EventRecord = decode(&format!("events/{event_id}"), row.get(3))?;
                events.insert(event_id.to_owned(), event.clone());
                event
            }
        };
        out.push((delivery, event));
    }
    Ok(out)
}

fn decode_deliveries(rows: &[tokio_postgres::Row]) -> Result<Vec<Delivery>, StoreError> {
    rows.iter()
        .map(|row| decode(&format!("deliveries/{}", row.get::<_, &str>(0)), row.get(1)))
        .collect()
}

/// Deliveries matching `query`, in the order redb lists them too: queued
/// ones by due time, the others by id.
pub(super) async fn read_deliveries(
    client: &impl Prepared,
    query: &DeliveryQuery,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = big(query.limit as u64);
    let state = query.state.map(DeliveryState::as_str);
    let rows = if query.state == Some(DeliveryState::Queued) {
        client
            .rows(
                "SELECT id, doc FROM deliveries WHERE state = 'queued' \
                 AND ($1::text IS NULL OR plugin = $1) AND ($3::text IS NULL OR end_user = $3) \
                 ORDER BY due_ms, id LIMIT $2",
                &[&query.plugin, &limit, &query.end_user],
            )
            .await?
    } else {
        client
            .rows(
                "SELECT id, doc FROM deliveries WHERE ($1::text IS NULL OR state = $1) \
                 AND ($2::text IS NULL OR plugin = $2) AND ($4::text IS NULL OR end_user = $4) \
                 ORDER BY id LIMIT $3",
                &[&state, &query.plugin, &limit, &query.end_user],
            )
            .await?
    };
    decode_deliveries(&rows)
}

/// The rows a batch may share with another host's batch — idempotency
/// keys, schedule marks, a plugin's kv usage, a delivery — locked up front
/// as transaction advisory locks in one order (their hashes'), so two
/// batches wanting the same rows queue instead of deadlocking.
async fn lock_shared_rows(
    txn: &deadpool_postgres::Transaction<'_>,
    entries: &[JournalEntry],
) -> Result<(), StoreError> {
    let mut keys: Vec<String> = Vec::new();
    for entry in entries {
        match entry {
            JournalEntry::Execution(_) => {}
            JournalEntry::Event(new) => {
                if let Some(key) = &new.event.value.idempotency_key {
                    keys.push(format!("idempotency:{key}"));
                }
                if let Some((mark, _)) = &new.schedule_mark {
                    keys.push(format!("schedule:{mark}"));
                }
            }
            JournalEntry::Settled { delivery, .. } => {
                keys.push(format!("delivery:{}", delivery.value.id));
            }
            JournalEntry::Delivery { id, .. } => keys.push(format!("delivery:{id}")),
            JournalEntry::Kv(write) => {
                let (junction_core::kv::KvWrite::Set { plugin, .. }
                | junction_core::kv::KvWrite::Delete { plugin, .. }) = write.as_ref();
                keys.push(format!("kv:{plugin}"));
            }
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    txn.row(
        "SELECT count(pg_advisory_xact_lock(h)) FROM ( \
           SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS ordered",
        &[&keys],
    )
    .await?;
    Ok(())
}

impl Postgres {
    async fn commit_journal_once(
        &self,
        entries: &[JournalEntry],
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        let now = junction_core::now_ms();
        let lease = Lease {
            run: &self.run,
            until_ms: self.lease_until(now),
        };
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        lock_shared_rows(&txn, entries).await?;
        let mut answers = Vec::with_capacity(entries.len());
        let mut records: Vec<&Encoded<ExecutionRecord>> = Vec::new();
        for entry in entries {
            let answer = match entry {
                JournalEntry::Execution(record) => {
                    records.push(record);
                    JournalAnswer::Written
                }
                JournalEntry::Event(new) => accept(&txn, new, now, lease).await?,
                JournalEntry::Settled {
                    delivery, record, ..
                } => {
                    // The attempt's record is kept either way: it ran.
                    if let Some(record) = record {
                        records.push(record);
                    }
                    if replace_delivery(&txn, delivery, lease, true).await? {
                        JournalAnswer::Written
                    } else {
                        JournalAnswer::Skipped
                    }
                }
                JournalEntry::Delivery { id, change: what } => {
                    change(&txn, id, what, now, lease).await?
                }
                JournalEntry::Kv(write) => {
                    JournalAnswer::Kv(super::kv::apply_in(&txn, write).await?)
                }
            };
            answers.push(answer);
        }
        super::executions::insert_in(&txn, &records, retention).await?;
        txn.commit().await?;
        Ok(answers)
    }
}

#[async_trait]
impl crate::journal::JournalRows for Postgres {
    async fn commit_journal(
        &self,
        entries: Vec<JournalEntry>,
        retention: HistoryBudget,
    ) -> Result<Vec<JournalAnswer>, StoreError> {
        // Batches of several hosts touch shared rows (idempotency keys,
        // schedule marks, kv usage) in their own orders, so PostgreSQL may
        // end one of two as a deadlock; the batch rolled back whole and is
        // run again, as its callers expect it to commit.
        let mut attempt = 1;
        loop {
            match self.commit_journal_once(&entries, retention).await {
                Err(err) if attempt < BATCH_ATTEMPTS && super::is_conflict(&err) => {
                    tracing::debug!(attempt, error = %err, "journal batch conflicted with another host's; running it again");
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM events WHERE id = $1", &[&id])
            .await?;
        row.map(|row| decode(&format!("events/{id}"), row.get(0)))
            .transpose()
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM deliveries WHERE id = $1", &[&id])
            .await?;
        row.map(|row| decode(&format!("deliveries/{id}"), row.get(0)))
            .transpose()
    }

    async fn deliveries_by_id(&self, ids: &[String]) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows(
                "SELECT d.id, d.doc FROM unnest($1::text[]) WITH ORDINALITY AS asked (id, n) \
                 JOIN deliveries d ON d.id = asked.id ORDER BY asked.n",
                &[&ids],
            )
            .await?;
        decode_deliveries(&rows)
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let client = self.client().await?;
        read_deliveries(&client, query).await
    }

    async fn pending_deliveries(&self) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows(
                "SELECT d.id, d.doc, e.id, e.doc FROM deliveries d \
                 JOIN events e ON e.id = d.event_id \
                 WHERE d.state = 'queued' ORDER BY d.due_ms, d.id",
                &[],
            )
            .await?;
        with_events(&rows)
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<(Delivery, EventRecord)>, StoreError> {
        let now = junction_core::now_ms();
        let client = self.client().await?;
        // SKIP LOCKED: hosts claiming at once each take different rows
        // instead of queueing behind each other's locks.
        let rows = client
            .rows(
                "WITH claimed AS ( \
                   UPDATE deliveries d SET lease_run = $1, lease_until_ms = $2 \
                   WHERE d.id IN ( \
                     SELECT id FROM deliveries \
                     WHERE state = 'queued' AND lease_until_ms < $3 \
                     ORDER BY due_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                   RETURNING d.id, d.doc, d.event_id, d.due_ms) \
                 SELECT c.id, c.doc, e.id, e.doc FROM claimed c JOIN events e ON e.id = c.event_id \
                 ORDER BY c.due_ms, c.id",
                &[
                    &self.run,
                    &self.lease_until(now),
                    &big(now),
                    &big(limit as u64),
                ],
            )
            .await?;
        with_events(&rows)
    }

    async fn renew_leases(&self) -> Result<u64, StoreError> {
        let until = self.lease_until(junction_core::now_ms());
        let client = self.client().await?;
        client
            .run(
                // Rows locked now are being settled (which leases them
                // afresh) or are not this host's to renew: skipping them
                // keeps renewals from ever waiting on, or deadlocking
                // with, a journal batch.
                "UPDATE deliveries SET lease_until_ms = $2 WHERE id IN ( \
                   SELECT id FROM deliveries WHERE state = 'queued' AND lease_run = $1 \
                   FOR UPDATE SKIP LOCKED)",
                &[&self.run, &until],
            )
            .await
    }

    async fn release_leases(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .run(
                "UPDATE deliveries SET lease_run = NULL, lease_until_ms = 0 \
                 WHERE state = 'queued' AND lease_run = $1",
                &[&self.run],
            )
            .await
    }

    async fn prune_events(&self, keep: u64, max_age_ms: u64) -> Result<u64, StoreError> {
        let now = junction_core::now_ms();
        let cutoff = big(now.saturating_sub(max_age_ms));
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        // One host prunes at a time; the others find the work being done.
        let ours: bool = txn
            .row("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])
            .await?
            .get(0);
        if !ours {
            return Ok(0);
        }
        let total = unbig(txn.row("SELECT count(*) FROM events", &[]).await?.get(0));
        let excess = big(total.saturating_sub(keep));
        // Beyond the newest `keep`, events whose deliveries all succeeded
        // or were cancelled; whatever their number, old events whose
        // deliveries are all final, dead ones included.
        let removed = txn
            .rows(
                "DELETE FROM events e WHERE \
                   (e.seq IN (SELECT seq FROM events ORDER BY seq LIMIT $1) OR e.accepted_at_ms < $2) \
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND NOT ( \
                     d.state IN ('succeeded', 'cancelled') OR (d.state = 'dead' AND e.accepted_at_ms < $2))) \
                 RETURNING e.id",
                &[&excess, &cutoff],
            )
            .await?;
        let ids: Vec<&str> = removed.iter().map(|row| row.get(0)).collect();
        txn.run("DELETE FROM deliveries WHERE event_id = ANY($1)", &[&ids])
            .await?;
        // Keys past their window go, whether or not their event is still kept.
        txn.run(
            "DELETE FROM idempotency WHERE accepted_at_ms <= $1",
            &[&big(now.saturating_sub(IDEMPOTENCY_WINDOW_MS))],
        )
        .await?;
        txn.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn insert_executions(
        &self,
        records: Vec<ExecutionRecord>,
        retention: HistoryBudget,
    ) -> Result<(), StoreError> {
        Postgres::insert_executions(self, records, retention).await
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Postgres::execution(self, id).await
    }

    async fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, StoreError> {
        Postgres::executions(self, query).await
    }
}

#[async_trait]
impl crate::journal::TriggerRows for Postgres {
    async fn api_triggers(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows("SELECT id, doc FROM triggers ORDER BY id", &[])
            .await?;
        rows.iter()
            .map(|row| decode(&format!("triggers/{}", row.get::<_, &str>(0)), row.get(1)))
            .collect()
    }

    async fn put_trigger(&self, id: &str, trigger: &serde_json::Value) -> Result<(), StoreError> {
        let doc = encode("triggers", trigger)?;
        let plugin = trigger["plugin"].as_str();
        let client = self.client().await?;
        client
            .run(
                "INSERT INTO triggers (id, plugin, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET plugin = EXCLUDED.plugin, doc = EXCLUDED.doc",
                &[&id, &plugin, &doc],
            )
            .await?;
        Ok(())
    }

    async fn delete_triggers(&self, ids: &[String]) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let removed = client
            .run("DELETE FROM triggers WHERE id = ANY($1)", &[&ids])
            .await?;
        Ok(removed as usize)
    }

    async fn schedule_marks(&self) -> Result<HashMap<String, u64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows("SELECT key, at_ms FROM schedule_marks", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), unbig(row.get(1))))
            .collect())
    }

    async fn set_schedule_mark(&self, key: &str, at_ms: u64) -> Result<(), StoreError> {
        let client = self.client().await?;
        set_mark(&client, key, at_ms).await
    }

    async fn sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT sealed FROM hook_secrets WHERE plugin = $1 AND hook = $2",
                &[&plugin, &hook],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn set_sealed_hook_secret(
        &self,
        plugin: &str,
        hook: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .run(
                "INSERT INTO hook_secrets (plugin, hook, sealed) VALUES ($1, $2, $3) \
                 ON CONFLICT (plugin, hook) DO UPDATE SET sealed = EXCLUDED.sealed",
                &[&plugin, &hook, &sealed],
            )
            .await?;
        Ok(())
    }

    async fn forget_plugin_events(&self, plugin: &str) -> Result<(), StoreError> {
        let prefix = format!("{plugin}/");
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.run("DELETE FROM hook_secrets WHERE plugin = $1", &[&plugin])
            .await?;
        txn.run(
            "DELETE FROM schedule_marks WHERE starts_with(key, $1)",
            &[&prefix],
        )
        .await?;
        txn.run("DELETE FROM triggers WHERE plugin = $1", &[&plugin])
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
