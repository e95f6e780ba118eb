//! The dispatcher: runs queued deliveries on the active version of their
//! plugin, at most `global` at once and at most the plugin's limit per
//! plugin, taking plugins in turn so one busy plugin cannot starve the
//! others. A failed attempt is retried with exponential backoff and jitter
//! until the trigger's retries are used up, then dead-lettered. The queue
//! lives in redb (see `store::events`); this loop holds a copy in memory,
//! reloaded on start, so a delivery that was running at a crash runs again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::journal::Journal;
use crate::metrics::Metrics;
use junction_core::{Event, ExecutionRecord};

use super::executor::{Executor, NotRunnable};
use junction_store::{
    Delivery, DeliveryChange, Encoded, EventRecord, JournalAnswer, JournalEntry, now_ms,
};

/// How deliveries are run and retried.
#[derive(Debug, Clone, Copy)]
pub struct DispatchConfig {
    /// Deliveries running at once, over all plugins.
    pub global: usize,
    /// Deliveries of one plugin running at once, unless its manifest says otherwise.
    pub per_plugin: usize,
    /// The first retry's delay; each later one doubles it.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// How long this host holds a delivery without renewing its lease (on
    /// a store several hosts share): it renews every third of it, and a
    /// dead host's deliveries run elsewhere this long after it died.
    pub lease: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            global: 64,
            per_plugin: 16,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            lease: junction_store::postgres::DEFAULT_LEASE,
        }
    }
}

/// A delivery waiting in memory. While it is queued the dispatcher owns
/// it: the state it computes after an attempt is what the store keeps.
#[derive(Debug, Clone)]
pub struct Job {
    /// The delivery as stored.
    pub delivery: Delivery,
    /// The event.
    pub event: Arc<EventRecord>,
}

enum Command {
    Enqueue(Vec<Job>),
    Finished { plugin: String, delivery: String },
    Cancel { plugin: String, reason: String },
    Stop(oneshot::Sender<()>),
}

/// What a running delivery needs.
struct Context {
    executor: Arc<dyn Executor>,
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
    index: Arc<super::index::TriggerIndex>,
    config: DispatchConfig,
    commands: mpsc::UnboundedSender<Command>,
}

/// The handle the rest of the host uses.
#[derive(Clone)]
pub struct Dispatcher {
    commands: mpsc::UnboundedSender<Command>,
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Dispatcher {
    /// Starts the loop with `pending` (from the store) already queued.
    pub fn start(
        executor: Arc<dyn Executor>,
        journal: Arc<Journal>,
        metrics: Arc<Metrics>,
        index: Arc<super::index::TriggerIndex>,
        config: DispatchConfig,
        pending: Vec<Job>,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let running = Arc::new(std::sync::Mutex::new(Default::default()));
        let context = Arc::new(Context {
            executor,
            journal,
            metrics,
            index,
            config,
            commands: commands.clone(),
        });
        let mut state = Loop {
            context,
            receiver,
            per_plugin: HashMap::new(),
            delayed: BTreeMap::new(),
            rotation: VecDeque::new(),
            running_total: 0,
            waiting: 0,
            next_seq: 0,
            running_ids: running.clone(),
        };
        for job in pending {
            state.push(job);
        }
        let task = tokio::spawn(state.run());
        (Dispatcher { commands, running }, task)
    }

    /// Queues deliveries (just committed).
    pub fn enqueue(&self, jobs: Vec<Job>) {
        if !jobs.is_empty() {
            let _ = self.commands.send(Command::Enqueue(jobs));
        }
    }

    /// Drops a deleted plugin's queued deliveries, recording why.
    pub fn cancel_plugin(&self, plugin: &str, reason: String) {
        let _ = self.commands.send(Command::Cancel {
            plugin: plugin.to_owned(),
            reason,
        });
    }

    /// Whether this delivery is running now.
    pub fn is_running(&self, delivery: &str) -> bool {
        self.running
            .lock()
            .map(|set| set.contains(delivery))
            .unwrap_or(false)
    }

    /// Stops starting deliveries and waits for the running ones to finish
    /// (each ends by its deadline). Queued ones stay queued in the store.
    pub async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = finished.await;
        }
    }
}

#[derive(Default)]
struct PluginQueue {
    ready: VecDeque<(Job, Instant)>,
    running: usize,
    in_rotation: bool,
}

struct Loop {
    context: Arc<Context>,
    receiver: mpsc::UnboundedReceiver<Command>,
    per_plugin: HashMap<String, PluginQueue>,
    delayed: BTreeMap<(u64, u64), Job>,
    rotation: VecDeque<String>,
    running_total: usize,
    waiting: usize,
    next_seq: u64,
    running_ids: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Loop {
    fn push(&mut self, job: Job) {
        self.waiting += 1;
        if job.delivery.next_attempt_at_ms <= now_ms() {
            self.make_ready(job, Instant::now());
        } else {
            self.next_seq += 1;
            self.delayed
                .insert((job.delivery.next_attempt_at_ms, self.next_seq), job);
        }
    }

    fn make_ready(&mut self, job: Job, since: Instant) {
        let plugin = job.delivery.plugin.clone();
        let queue = self.per_plugin.entry(plugin.clone()).or_default();
        queue.ready.push_back((job, since));
        if !queue.in_rotation {
            queue.in_rotation = true;
            self.rotation.push_back(plugin);
        }
    }

    fn limit(&self, plugin: &str) -> usize {
        self.context
            .index
            .concurrency(plugin)
            .map(|n| n as usize)
            .unwrap_or(self.context.config.per_plugin)
            .max(1)
    }

    fn promote_due(&mut self) -> Option<Duration> {
        let now = now_ms();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                return Some(Duration::from_millis(entry.key().0 - now));
            }
            let job = entry.remove();
            self.make_ready(job, Instant::now());
        }
        None
    }

    /// Starts what the limits allow, one plugin at a time in turn.
    fn dispatch(&mut self) {
        // Each turn either starts a delivery or takes a plugin out of the
        // rotation (nothing ready, or at its limit), so this ends.
        while self.running_total < self.context.config.global.max(1) {
            let Some(plugin) = self.rotation.pop_front() else {
                break;
            };
            let limit = self.limit(&plugin);
            let Some(queue) = self.per_plugin.get_mut(&plugin) else {
                continue;
            };
            if queue.running >= limit {
                // At its limit: it goes back in turn when one finishes.
                queue.in_rotation = false;
                continue;
            }
            let Some((job, since)) = queue.ready.pop_front() else {
                queue.in_rotation = false;
                continue;
            };
            queue.running += 1;
            if queue.ready.is_empty() {
                queue.in_rotation = false;
            } else {
                self.rotation.push_back(plugin);
            }
            self.running_total += 1;
            self.waiting = self.waiting.saturating_sub(1);
            if let Ok(mut set) = self.running_ids.lock() {
                set.insert(job.delivery.id.clone());
            }
            self.context
                .metrics
                .start_latency(since.elapsed().as_secs_f64());
            tokio::spawn(attempt(self.context.clone(), job));
        }
        self.context.metrics.queue(self.waiting, self.running_total);
    }

    fn finished(&mut self, plugin: &str) {
        self.running_total = self.running_total.saturating_sub(1);
        if let Some(queue) = self.per_plugin.get_mut(plugin) {
            queue.running = queue.running.saturating_sub(1);
            if !queue.ready.is_empty() && !queue.in_rotation {
                queue.in_rotation = true;
                self.rotation.push_back(plugin.to_owned());
            }
            if queue.ready.is_empty() && queue.running == 0 {
                self.per_plugin.remove(plugin);
            }
        }
    }

    fn cancel(&mut self, plugin: &str, reason: &str) {
        let mut doomed: Vec<Job> = Vec::new();
        if let Some(queue) = self.per_plugin.get_mut(plugin) {
            doomed.extend(queue.ready.drain(..).map(|(job, _)| job));
        }
        let keys: Vec<(u64, u64)> = self
            .delayed
            .iter()
            .filter(|(_, job)| job.delivery.plugin == plugin)
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            if let Some(job) = self.delayed.remove(&key) {
                doomed.push(job);
            }
        }
        self.waiting = self.waiting.saturating_sub(doomed.len());
        for job in doomed {
            let journal = self.context.journal.clone();
            let metrics = self.context.metrics.clone();
            let change = DeliveryChange::Cancelled {
                reason: reason.to_owned(),
            };
            tokio::spawn(async move {
                settle(&journal, &job, change, None).await;
                metrics.delivery("cancelled");
            });
        }
    }

    async fn run(mut self) {
        let mut stopping: Option<oneshot::Sender<()>> = None;
        loop {
            let wake = self.promote_due();
            if stopping.is_none() {
                self.dispatch();
            } else if self.running_total == 0 {
                break;
            }
            let sleep = wake.unwrap_or(Duration::from_secs(3600));
            let command = tokio::select! {
                command = self.receiver.recv() => command,
                _ = tokio::time::sleep(sleep) => continue,
            };
            match command {
                Some(Command::Enqueue(jobs)) => {
                    for job in jobs {
                        self.push(job);
                    }
                }
                Some(Command::Finished { plugin, delivery }) => {
                    if let Ok(mut set) = self.running_ids.lock() {
                        set.remove(&delivery);
                    }
                    self.finished(&plugin);
                }
                Some(Command::Cancel { plugin, reason }) => self.cancel(&plugin, &reason),
                Some(Command::Stop(done)) => stopping = Some(done),
                None => break,
            }
        }
        if let Some(done) = stopping {
            let _ = done.send(());
        }
    }
}

/// The delay before retry number `retry` (from 1): the base doubled each
/// time up to the cap, then "equal jitter" (half fixed, half random) so
/// deliveries that failed together do not retry together.
pub fn backoff(config: &DispatchConfig, retry: u32) -> Duration {
    let exp = config
        .retry_base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    let capped = exp.min(config.retry_max);
    let half = capped / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// One attempt of one delivery.
async fn attempt(context: Arc<Context>, job: Job) {
    let attempt_number = job.delivery.attempts + 1;
    let event = Event {
        id: job.event.id.clone(),
        kind: job.event.kind.clone(),
        payload: job.event.payload.clone(),
        occurred_at_ms: job.event.occurred_at_ms,
        end_user: job.event.end_user.clone(),
    };
    let (change, record, outcome) =
        match context.executor.execute(&job.delivery.plugin, event).await {
            Err(gone @ NotRunnable::Deleted(_)) => (
                DeliveryChange::Cancelled {
                    reason: gone.to_string(),
                },
                None,
                "cancelled",
            ),
            Err(broken @ NotRunnable::Broken { .. }) => {
                failure(&context.config, &job, broken.to_string(), None)
            }
            Ok(mut record) => {
                record.delivery_id = Some(job.delivery.id.clone());
                record.attempt = Some(attempt_number);
                context.metrics.execution(&record);
                match record.failure() {
                    None => (DeliveryChange::Succeeded, Some(record), "succeeded"),
                    Some((kind, message)) => {
                        let class = serde_json::to_value(kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        let error = format!("{class}: {message}");
                        failure(&context.config, &job, error, Some(record))
                    }
                }
            }
        };
    // The plugin's slot is free once its instance is gone; the commit that
    // follows is shared with other writers and should not hold it.
    let _ = context.commands.send(Command::Finished {
        plugin: job.delivery.plugin.clone(),
        delivery: job.delivery.id.clone(),
    });
    let next = settle(&context.journal, &job, change, record).await;
    context.metrics.delivery(outcome);
    if let Some(next) = next
        && next.state == junction_store::DeliveryState::Queued
    {
        let _ = context.commands.send(Command::Enqueue(vec![Job {
            delivery: next,
            event: job.event.clone(),
        }]));
    }
}

/// A failed attempt: retried while retries are left, dead after.
fn failure(
    config: &DispatchConfig,
    job: &Job,
    error: String,
    record: Option<ExecutionRecord>,
) -> (DeliveryChange, Option<ExecutionRecord>, &'static str) {
    let attempts = job.delivery.attempts + 1;
    if attempts <= job.delivery.max_retries {
        let at_ms = now_ms() + backoff(config, attempts).as_millis() as u64;
        (DeliveryChange::Retry { at_ms, error }, record, "retried")
    } else {
        (DeliveryChange::Dead { error }, record, "dead")
    }
}

/// Commits a delivery's change with its attempt's record; returns the
/// delivery as stored, or `None` when it could not be stored (it stays
/// queued in the store and runs again after a restart).
async fn settle(
    journal: &Journal,
    job: &Job,
    change: DeliveryChange,
    record: Option<ExecutionRecord>,
) -> Option<Delivery> {
    let now = now_ms();
    let after = junction_store::apply_change(job.delivery.clone(), &change, record.as_ref(), now)?;
    let encoded = (|| {
        let record = record.map(Encoded::new).transpose()?.map(Box::new);
        let delivery = Box::new(Encoded::new(after.clone())?);
        Ok::<_, junction_store::StoreError>((delivery, record))
    })();
    let result = match encoded {
        Ok((delivery, record)) => journal
            .write(JournalEntry::Settled {
                delivery,
                previous_due_ms: job.delivery.next_attempt_at_ms,
                record,
            })
            .await
            .map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match result {
        Ok(JournalAnswer::Skipped) => {
            // This host's lease lapsed and another host runs it now.
            tracing::warn!(delivery = %job.delivery.id, plugin = %job.delivery.plugin, "the delivery was taken over by another host; this attempt's outcome is recorded but not applied");
            None
        }
        Ok(_) => Some(after),
        Err(err) => {
            tracing::error!(delivery = %job.delivery.id, plugin = %job.delivery.plugin, error = %err, "cannot record the delivery's attempt");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = DispatchConfig {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            ..DispatchConfig::default()
        };
        for _ in 0..50 {
            for (retry, full) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1000),
                (30, 1000),
            ] {
                let delay = backoff(&config, retry).as_millis() as u64;
                assert!(
                    delay >= full / 2 && delay <= full,
                    "retry {retry}: {delay} ms is outside {}..={full}",
                    full / 2
                );
            }
        }
    }
}
