//! Hosts on one PostgreSQL database telling each other about changes with
//! `NOTIFY` on one channel, heard by a `LISTEN` on a connection of its own
//! outside the pool, and rate limits kept as one GCRA row per key
//! (its theoretical arrival time), updated in a single statement.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Postgres, Prepared, big, unbig};
use crate::StoreError;
use crate::cluster::{Change, Changes, Cluster, RateAnswer};

/// The notification channel every host listens on.
const CHANNEL: &str = "junction_changes";
/// Changes heard but not yet acted on; past it the listener waits.
const BACKLOG: usize = 1024;
/// The pause before reconnecting a listener that lost its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Rate checks between two sweeps of keys whose allowance is full again.
const SWEEP_EVERY: u64 = 4096;
/// The burst a rate limit allows: a minute's allowance.
const WINDOW_MS: u64 = 60_000;

#[async_trait]
impl Cluster for Postgres {
    async fn announce(&self, change: &Change) -> Result<(), StoreError> {
        // The run id lets each host skip its own announcements.
        let payload = format!("{} {}", self.run, change.encode());
        let client = self.client().await?;
        client
            .run("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
            .await?;
        Ok(())
    }

    async fn listen(&self) -> Result<Changes, StoreError> {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        let (config, run, describe) =
            (self.config.clone(), self.run.clone(), self.describe.clone());
        tokio::spawn(async move {
            let mut first = true;
            while !sender.is_closed() {
                match hear(&config, &run, &sender, first).await {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::warn!(at = %describe, error = %err, "the change listener lost its connection; reconnecting")
                    }
                }
                first = false;
                tokio::select! {
                    _ = sender.closed() => break,
                    _ = tokio::time::sleep(RECONNECT_AFTER) => {}
                }
            }
        });
        Ok(receiver)
    }

    async fn take_rate_token(
        &self,
        key: &str,
        now_ms: u64,
        per_minute: u32,
    ) -> Result<RateAnswer, StoreError> {
        let interval = WINDOW_MS / u64::from(per_minute.max(1));
        let client = self.client().await?;
        if self.rate_checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // A key whose arrival time has passed has its whole allowance
            // back, the same as no row.
            client
                .run("DELETE FROM rate_limits WHERE tat_ms < $1", &[&big(now_ms)])
                .await?;
        }
        let (now, interval, window) = (big(now_ms), big(interval), big(WINDOW_MS));
        let taken = client
            .maybe_row(
                "INSERT INTO rate_limits AS r (key, tat_ms) VALUES ($1, $2::bigint + $3::bigint) \
                 ON CONFLICT (key) DO UPDATE SET tat_ms = GREATEST(r.tat_ms, $2::bigint) + $3::bigint \
                 WHERE GREATEST(r.tat_ms, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint \
                 RETURNING tat_ms",
                &[&key, &now, &interval, &window],
            )
            .await?;
        if taken.is_some() {
            return Ok(RateAnswer::Allowed);
        }
        let tat = client
            .maybe_row("SELECT tat_ms FROM rate_limits WHERE key = $1", &[&key])
            .await?
            .map_or(now, |row| row.get(0));
        let wait = unbig(
            tat.saturating_add(interval)
                .saturating_sub(now)
                .saturating_sub(window),
        );
        Ok(RateAnswer::RetryAfterMs(wait.max(1)))
    }
}

/// Listens on one connection until it fails: sends each change another run
/// announced, and a resync first when this is a reconnect.
async fn hear(
    config: &tokio_postgres::Config,
    run: &str,
    sender: &mpsc::Sender<Change>,
    first: bool,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (heard, mut hearing) = mpsc::unbounded_channel::<String>();
    // The connection does its work (queries included) only while polled.
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if heard.send(note.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    if !first && sender.send(Change::Resync).await.is_err() {
        return Ok(());
    }
    loop {
        let payload = tokio::select! {
            _ = sender.closed() => break,
            payload = hearing.recv() => match payload {
                Some(payload) => payload,
                None => break,
            },
        };
        let (from, text) = payload.split_once(' ').unwrap_or(("", &payload));
        if from == run {
            continue;
        }
        let change = Change::decode(text).unwrap_or(Change::Resync);
        if sender.send(change).await.is_err() {
            break;
        }
    }
    drop(client);
    if sender.is_closed() {
        driver.abort();
        return Ok(());
    }
    match driver.await {
        Ok(Err(err)) => Err(err.into()),
        _ => Ok(()),
    }
}
