//! The host's Prometheus metrics (the `prometheus-client` crate, the
//! official Rust client): events accepted, deliveries by outcome, queue
//! depth, execution time per plugin, `invoke-url` calls by status, token
//! refreshes and instances in use. Counters are updated where things happen;
//! gauges that other parts own are read when `/metrics` is scraped.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use junction_core::ExecutionRecord;

type Labels = Vec<(&'static str, String)>;

fn seconds_histogram() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Every metric the host exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    events_accepted: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    queue_depth: Gauge,
    deliveries_running: Gauge,
    executions: Family<Labels, Counter>,
    execution_seconds: Family<Labels, Histogram>,
    start_latency: Histogram,
    invoke_url_calls: Family<Labels, Counter>,
    token_refreshes: Family<Labels, Counter>,
    instances_in_use: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("junction")),
            events_accepted: Family::default(),
            deliveries: Family::default(),
            queue_depth: Gauge::default(),
            deliveries_running: Gauge::default(),
            executions: Family::default(),
            execution_seconds: Family::new_with_constructor(seconds_histogram),
            start_latency: seconds_histogram(),
            invoke_url_calls: Family::default(),
            token_refreshes: Family::default(),
            instances_in_use: Gauge::default(),
        };
        // A new mutex cannot be poisoned.
        let registry = metrics
            .registry
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.register(
            "events_accepted",
            "Events committed, by source (api, webhook, schedule, connection)",
            metrics.events_accepted.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts by outcome (succeeded, retried, dead, cancelled)",
            metrics.deliveries.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Deliveries waiting to run (due now or later)",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "deliveries_running",
            "Deliveries running now",
            metrics.deliveries_running.clone(),
        );
        registry.register(
            "executions",
            "Executions by plugin and status (ok, failed)",
            metrics.executions.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "Wall time of executions, per plugin",
            metrics.execution_seconds.clone(),
        );
        registry.register(
            "delivery_start_latency_seconds",
            "From an event's commit (or a retry falling due) to its execution starting",
            metrics.start_latency.clone(),
        );
        registry.register(
            "invoke_url_calls",
            "invoke-url calls by response status (or `error` when there was no response)",
            metrics.invoke_url_calls.clone(),
        );
        registry.register(
            "token_refreshes",
            "OAuth token refreshes since the start, by outcome (ok, failed)",
            metrics.token_refreshes.clone(),
        );
        registry.register(
            "plugin_instances_in_use",
            "Plugin instances running now",
            metrics.instances_in_use.clone(),
        );
        metrics
    }

    /// Counts an accepted event.
    pub fn event_accepted(&self, source: &str) {
        self.events_accepted
            .get_or_create(&vec![("source", source.to_owned())])
            .inc();
    }

    /// Counts a delivery attempt's outcome.
    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Sets the queue gauges.
    pub fn queue(&self, waiting: usize, running: usize) {
        self.queue_depth.set(waiting as i64);
        self.deliveries_running.set(running as i64);
    }

    /// Observes how long a delivery waited before it started.
    pub fn start_latency(&self, seconds: f64) {
        self.start_latency.observe(seconds);
    }

    /// Observes a finished execution and its `invoke-url` calls.
    pub fn execution(&self, record: &ExecutionRecord) {
        let status = if record.is_ok() { "ok" } else { "failed" };
        self.executions
            .get_or_create(&vec![
                ("plugin", record.plugin.clone()),
                ("status", status.to_owned()),
            ])
            .inc();
        self.execution_seconds
            .get_or_create(&vec![("plugin", record.plugin.clone())])
            .observe(record.wall_time_ms / 1000.0);
        for call in &record.calls {
            let status = call
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "error".to_owned());
            self.invoke_url_calls
                .get_or_create(&vec![("status", status)])
                .inc();
        }
    }

    /// The Prometheus text exposition, after setting the gauges read at scrape.
    pub fn render(&self, refreshes: (u64, u64), instances_in_use: usize) -> String {
        // The keeper counts; the counters here catch up with it.
        for (outcome, total) in [("ok", refreshes.0), ("failed", refreshes.1)] {
            let counter = self
                .token_refreshes
                .get_or_create(&vec![("outcome", outcome.to_owned())]);
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        }
        self.instances_in_use.set(instances_in_use as i64);
        let mut text = String::new();
        match self.registry.lock() {
            Ok(registry) => {
                if let Err(err) = encode(&mut text, &registry) {
                    tracing::error!(error = %err, "cannot encode the metrics");
                }
            }
            Err(_) => tracing::error!("the metrics registry is poisoned"),
        }
        text
    }
}
