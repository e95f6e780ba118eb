//! Load for the benchmarks: N clients POST the same JSON body to one path of
//! a running [`TestHost`] for a while, and the rate and latency percentiles
//! of the answers with the expected status are reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::host::TestHost;

/// The value at fraction `p` of a sorted list (the default when empty).
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What one load run measured.
pub struct LoadReport {
    /// Latency of each answer with the expected status, sorted.
    pub latencies: Vec<Duration>,
    /// Requests that failed or had another status.
    pub failed: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl LoadReport {
    /// One line: rate, p50, p99, counts.
    pub fn line(&self, label: &str, unit: &str) -> String {
        format!(
            "{label}: {:>8.0} {unit}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} failed)",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            percentile(&self.latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1000.0,
            self.latencies.len(),
            self.failed,
        )
    }
}

/// `clients` concurrent clients POST `body` to `path` for `run_for`.
pub async fn post_load(
    host: &Arc<TestHost>,
    clients: usize,
    run_for: Duration,
    path: &'static str,
    body: Value,
    expect: StatusCode,
) -> LoadReport {
    load(
        host,
        clients,
        run_for,
        move |host| host.request(reqwest::Method::POST, path).json(&body),
        expect,
    )
    .await
}

/// `clients` concurrent clients send the request `make` builds, for `run_for`.
pub async fn load<F>(
    host: &Arc<TestHost>,
    clients: usize,
    run_for: Duration,
    make: F,
    expect: StatusCode,
) -> LoadReport
where
    F: Fn(&TestHost) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    load_over(std::slice::from_ref(host), clients, run_for, make, expect).await
}

/// [`load`] over several hosts: client `n` talks to host `n % hosts.len()`,
/// as a load balancer spreading connections would.
pub async fn load_over<F>(
    hosts: &[Arc<TestHost>],
    clients: usize,
    run_for: Duration,
    make: F,
    expect: StatusCode,
) -> LoadReport
where
    F: Fn(&TestHost) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let deadline = Instant::now() + run_for;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (host, make) = (hosts[client % hosts.len()].clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = make(&host).send().await;
                match response {
                    Ok(r) if r.status() == expect => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let mut report = LoadReport {
        latencies: Vec::new(),
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, failed) = task.await.expect("client task");
        report.latencies.extend(latencies);
        report.failed += failed;
    }
    report.elapsed = started.elapsed();
    report.latencies.sort();
    report
}
