//! PostgreSQL beside redb, in one run: the same load against one host on
//! redb (the reference), one host on PostgreSQL and three hosts sharing one
//! PostgreSQL database, each figure also as a ratio to redb's.
//! 1. events accepted per second (`POST /v1/events`, no trigger: each 202
//!    follows its commit);
//! 2. invokes per second (`POST /v1/plugins/hello/invoke`, one execution
//!    and its record each);
//! 3. events executed end to end per second (`hello` triggered by each
//!    event; from the first send until the last execution is recorded).
//!
//! The clients spread over the hosts as a load balancer would. All hosts
//! and the clients share this machine's cores, so three hosts show what
//! sharing the database costs, not what three machines would add.
//!
//! Run with `./scripts/bench-cluster.sh`, which starts a durable throwaway
//! PostgreSQL (fsync on), or with `JUNCTION_TEST_POSTGRES` set:
//! `cargo bench --profile dev -p junction-tests --bench cluster`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use junction_host::store::StoreUrl;
use junction_tests::host::TestHost;
use junction_tests::load::load_over;
use junction_tests::plugins::component_bytes;
use junction_tests::postgres::fresh_database;
use serde_json::json;

const RUN_FOR: Duration = Duration::from_secs(4);
const CLIENTS: usize = 64;
const END_TO_END_EVENTS: usize = 6_000;

/// What one setup measured, per second.
#[derive(Clone, Copy)]
struct Figures {
    accepted: f64,
    invoked: f64,
    executed: f64,
}

async fn hosts(store: Option<StoreUrl>, count: usize) -> Vec<Arc<TestHost>> {
    let first = TestHost::start_with(move |config| {
        config.max_instances = 64;
        if let Some(store) = store {
            config.store = store;
        }
    })
    .await;
    let mut hosts = Vec::new();
    for _ in 1..count {
        hosts.push(Arc::new(first.beside().await));
    }
    hosts.insert(0, Arc::new(first));
    hosts
}

async fn deploy(hosts: &[Arc<TestHost>]) {
    let up = hosts[0]
        .upload(
            "hello",
            component_bytes("hello"),
            Some(&json!({"triggers": [{"event": "bench"}]})),
            None,
        )
        .await;
    assert!(up.status.is_success(), "{}", up.text);
    let deadline = Instant::now() + Duration::from_secs(10);
    for host in hosts {
        while host.get("/v1/plugins/hello").await.json["loaded_from"].is_null() {
            assert!(Instant::now() < deadline, "a host never loaded the plugin");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn rate(
    hosts: &[Arc<TestHost>],
    path: &'static str,
    body: serde_json::Value,
    expect: reqwest::StatusCode,
) -> f64 {
    let report = load_over(
        hosts,
        CLIENTS,
        RUN_FOR,
        move |host| host.request(reqwest::Method::POST, path).json(&body),
        expect,
    )
    .await;
    assert_eq!(
        report.failed, 0,
        "every request of {path} answered {expect}"
    );
    report.latencies.len() as f64 / report.elapsed.as_secs_f64()
}

async fn end_to_end(hosts: &[Arc<TestHost>]) -> f64 {
    let executed = Arc::new(AtomicUsize::new(0));
    let mut followers = Vec::new();
    for host in hosts {
        let mut live = host.server().events().journal().subscribe();
        let executed = executed.clone();
        followers.push(tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(record) if record.event_kind == "bench" => {
                        executed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        executed.fetch_add(n as usize, Ordering::SeqCst);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (host, sent) = (hosts[client % hosts.len()].clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::SeqCst) < END_TO_END_EVENTS {
                let response = host
                    .request(reqwest::Method::POST, "/v1/events")
                    .json(&json!({"kind": "bench", "payload": {"n": 1}}))
                    .send()
                    .await
                    .expect("send");
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{text}");
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while executed.load(Ordering::SeqCst) < END_TO_END_EVENTS {
        assert!(Instant::now() < deadline, "not every event was executed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed().as_secs_f64();
    for follower in followers {
        follower.abort();
    }
    END_TO_END_EVENTS as f64 / took
}

async fn measure(label: &str, hosts: Vec<Arc<TestHost>>) -> Figures {
    deploy(&hosts).await;
    let accepted = rate(
        &hosts,
        "/v1/events",
        json!({"kind": "bench.nobody", "payload": {"n": 1}}),
        reqwest::StatusCode::ACCEPTED,
    )
    .await;
    let invoked = rate(
        &hosts,
        "/v1/plugins/hello/invoke",
        json!({"payload": {"name": "bench"}}),
        reqwest::StatusCode::OK,
    )
    .await;
    let executed = end_to_end(&hosts).await;
    for host in hosts {
        if let Ok(mut host) = Arc::try_unwrap(host) {
            host.stop().await;
        }
    }
    println!("measured {label}");
    Figures {
        accepted,
        invoked,
        executed,
    }
}

fn main() {
    // Warnings and errors of the hosts, so a failed request says why.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let redb = measure("redb, 1 host", hosts(None, 1).await).await;
        let pg1 = measure(
            "PostgreSQL, 1 host",
            hosts(Some(fresh_database().await), 1).await,
        )
        .await;
        let pg3 = measure(
            "PostgreSQL, 3 hosts",
            hosts(Some(fresh_database().await), 3).await,
        )
        .await;
        println!(
            "\n{CLIENTS} clients, {} s per rate, {END_TO_END_EVENTS} events end to end",
            RUN_FOR.as_secs()
        );
        println!(
            "{:<22} {:>18} {:>18} {:>18}",
            "", "accepted/s", "invokes/s", "executed/s"
        );
        for (label, f) in [
            ("redb, 1 host", redb),
            ("PostgreSQL, 1 host", pg1),
            ("PostgreSQL, 3 hosts", pg3),
        ] {
            println!(
                "{label:<22} {:>9.0} ({:>4.2}x) {:>9.0} ({:>4.2}x) {:>9.0} ({:>4.2}x)",
                f.accepted,
                f.accepted / redb.accepted,
                f.invoked,
                f.invoked / redb.invoked,
                f.executed,
                f.executed / redb.executed,
            );
        }
    });
}
