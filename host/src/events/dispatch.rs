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

use super::history::History;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::runtime::Event;
use crate::store::{DeliveryChange, EventRecord, JournalEntry, now_ms};

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
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            global: 64,
            per_plugin: 16,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
        }
    }
}

/// A delivery waiting in memory.
#[derive(Debug, Clone)]
pub struct Job {
    /// The delivery.
    pub delivery_id: String,
    /// Its plugin.
    pub plugin: String,
    /// When it is due.
    pub due_ms: u64,
    /// Attempts already made.
    pub attempts: u32,
    /// Retries allowed.
    pub max_retries: u32,
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
    registry: Arc<Registry>,
    history: Arc<History>,
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
        registry: Arc<Registry>,
        history: Arc<History>,
        metrics: Arc<Metrics>,
        index: Arc<super::index::TriggerIndex>,
        config: DispatchConfig,
        pending: Vec<Job>,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let running = Arc::new(std::sync::Mutex::new(Default::default()));
        let context = Arc::new(Context {
            registry,
            history,
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
        if job.due_ms <= now_ms() {
            self.make_ready(job, Instant::now());
        } else {
            self.next_seq += 1;
            self.delayed.insert((job.due_ms, self.next_seq), job);
        }
    }

    fn make_ready(&mut self, job: Job, since: Instant) {
        let plugin = job.plugin.clone();
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
        let mut skipped = 0;
        while self.running_total < self.context.config.global.max(1)
            && skipped < self.rotation.len()
        {
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
            skipped = 0;
            self.running_total += 1;
            self.waiting = self.waiting.saturating_sub(1);
            if let Ok(mut set) = self.running_ids.lock() {
                set.insert(job.delivery_id.clone());
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
            .filter(|(_, job)| job.plugin == plugin)
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            if let Some(job) = self.delayed.remove(&key) {
                doomed.push(job);
            }
        }
        self.waiting = self.waiting.saturating_sub(doomed.len());
        for job in doomed {
            let history = self.context.history.clone();
            let metrics = self.context.metrics.clone();
            let change = DeliveryChange::Cancelled {
                reason: reason.to_owned(),
            };
            tokio::spawn(async move {
                settle(&history, &job, change, None).await;
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
    let attempt_number = job.attempts + 1;
    let (change, record, outcome) = match context.registry.get(&job.plugin) {
        None => match context.registry.load_error(&job.plugin) {
            Some(reason) => failure(
                &context.config,
                &job,
                format!("plugin `{}` cannot run: {reason}", job.plugin),
                None,
            ),
            None => (
                DeliveryChange::Cancelled {
                    reason: format!("plugin `{}` was deleted", job.plugin),
                },
                None,
                "cancelled",
            ),
        },
        Some(plugin) => {
            let event = Event {
                id: job.event.id.clone(),
                kind: job.event.kind.clone(),
                payload: job.event.payload.clone(),
                occurred_at_ms: job.event.occurred_at_ms,
            };
            let mut record = context
                .registry
                .runtime()
                .execute(&plugin.loaded, event)
                .await;
            record.delivery_id = Some(job.delivery_id.clone());
            record.attempt = Some(attempt_number);
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
    let retry_at = match &change {
        DeliveryChange::Retry { at_ms, .. } => Some(*at_ms),
        _ => None,
    };
    settle(&context.history, &job, change, record).await;
    context.metrics.delivery(outcome);
    let _ = context.commands.send(Command::Finished {
        plugin: job.plugin.clone(),
        delivery: job.delivery_id.clone(),
    });
    if let Some(due_ms) = retry_at {
        let mut next = job;
        next.attempts = attempt_number;
        next.due_ms = due_ms;
        let _ = context.commands.send(Command::Enqueue(vec![next]));
    }
}

/// A failed attempt: retried while retries are left, dead after.
fn failure(
    config: &DispatchConfig,
    job: &Job,
    error: String,
    record: Option<crate::runtime::ExecutionRecord>,
) -> (
    DeliveryChange,
    Option<crate::runtime::ExecutionRecord>,
    &'static str,
) {
    let attempts = job.attempts + 1;
    if attempts <= job.max_retries {
        let at_ms = now_ms() + backoff(config, attempts).as_millis() as u64;
        (DeliveryChange::Retry { at_ms, error }, record, "retried")
    } else {
        (DeliveryChange::Dead { error }, record, "dead")
    }
}

/// Commits a delivery's change (with its attempt's record) and clears it
/// from the running set.
async fn settle(
    history: &History,
    job: &Job,
    change: DeliveryChange,
    record: Option<crate::runtime::ExecutionRecord>,
) {
    let entry = JournalEntry::Delivery {
        id: job.delivery_id.clone(),
        change,
        record: record.map(Box::new),
    };
    if let Err(err) = history.write(entry).await {
        // The delivery stays queued in the store and runs again after a restart.
        tracing::error!(delivery = %job.delivery_id, plugin = %job.plugin, error = %err, "cannot record the delivery's attempt");
    }
}
