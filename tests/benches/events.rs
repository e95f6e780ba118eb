//! Events benchmark over loopback HTTP against the in-process server:
//! 1. events accepted per second (`POST /v1/events`, each answered 202 only
//!    after its group commit) with N concurrent clients and no trigger;
//! 2. end to end with `hello` as the triggered plugin: events sent as fast
//!    as the clients can, executed per second until the last execution is
//!    recorded, and the latency from the 202 to the execution's start.
//!
//! Run with `cargo bench -p junction-tests --bench events`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use junction_tests::host::TestHost;
use junction_tests::load::{percentile, post_load};
use junction_tests::plugins::component_bytes;
use serde_json::{Value, json};

const RUN_FOR: Duration = Duration::from_secs(4);
const END_TO_END_EVENTS: usize = 20_000;

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn accept_load(host: &Arc<TestHost>, clients: usize) {
    let report = post_load(
        host,
        clients,
        RUN_FOR,
        "/v1/events",
        json!({"kind": "bench.nobody", "payload": {"n": 1}}),
        reqwest::StatusCode::ACCEPTED,
    )
    .await;
    println!(
        "{}",
        report.line(&format!("accept  clients {clients:>3}"), "events")
    );
}

async fn end_to_end(host: &Arc<TestHost>, clients: usize) {
    let mut live = host.server().events().journal().subscribe();
    let accepted_at: Arc<Mutex<HashMap<String, f64>>> = Default::default();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (host, accepted_at, counter) = (host.clone(), accepted_at.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            while counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < END_TO_END_EVENTS {
                let response = host
                    .request(reqwest::Method::POST, "/v1/events")
                    .json(&json!({"kind": "bench", "payload": {"n": 1}}))
                    .send()
                    .await
                    .expect("send");
                let at = wall_ms();
                let body: Value = response.json().await.expect("json");
                let id = body["id"].as_str().expect("id").to_owned();
                accepted_at.lock().expect("lock").insert(id, at);
            }
        }));
    }
    let mut starts: HashMap<String, u64> = HashMap::new();
    let mut lagged = 0u64;
    while starts.len() + (lagged as usize) < END_TO_END_EVENTS {
        match tokio::time::timeout(Duration::from_secs(60), live.recv()).await {
            Ok(Ok(record)) => {
                starts.insert(record.event_id.clone(), record.started_at_ms);
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => lagged += n,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let executed_in = started.elapsed().as_secs_f64();
    for task in tasks {
        task.await.expect("client");
    }
    let accepted_at = accepted_at.lock().expect("lock");
    let mut latencies: Vec<f64> = starts
        .iter()
        .filter_map(|(id, start)| accepted_at.get(id).map(|at| *start as f64 - at))
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "end to end clients {clients:>3}: {END_TO_END_EVENTS} events executed in {executed_in:.2} s = {:>6.0} executed/s; 202 -> start p50 {:>5.1} ms  p99 {:>6.1} ms (ms clock; {lagged} records missed by the follower)",
        starts.len() as f64 / executed_in,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let host = Arc::new(TestHost::start_with(|config| config.max_instances = 64).await);
        for clients in [1, 4, 16, 64] {
            accept_load(&host, clients).await;
        }
        let up = host
            .upload(
                "hello",
                component_bytes("hello"),
                Some(&json!({"triggers": [{"event": "bench"}]})),
                None,
            )
            .await;
        assert!(up.status.is_success(), "{}", up.text);
        for clients in [16, 64] {
            end_to_end(&host, clients).await;
        }
        let metrics = host.metrics().await;
        for line in metrics.lines() {
            if line.starts_with("junction_delivery_start_latency_seconds_count")
                || line.starts_with("junction_delivery_start_latency_seconds_sum")
            {
                println!("{line}");
            }
        }
    });
}
