//! Three `junction serve` processes on one PostgreSQL database (a fresh one
//! on the throwaway cluster scripts/test.sh starts) share the delivery
//! queue: 3,000 events from 8 clients spread over the hosts, one host
//! SIGKILLed mid-burst, and every event that was answered 202 — on any
//! host, the dead one included — ends with a succeeded delivery once the
//! dead host's leases lapse. Deliveries that ran more than once (at least
//! once is the promise) are counted and printed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const EVENTS: usize = 3000;
const CLIENTS: usize = 8;
const HOSTS: usize = 3;

fn flags(store: &str) -> Vec<&str> {
    vec![
        "--store",
        store,
        "--delivery-lease-ms",
        "1500",
        "--plugin-concurrency",
        "1",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_event_is_delivered_when_one_of_three_hosts_is_sigkilled() {
    // The test cluster has no password, so the URL prints in full.
    let store = junction_tests::postgres::fresh_database().await.to_string();
    let dirs: Vec<tempfile::TempDir> = (0..HOSTS)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let first = ServeChild::start_with(dirs[0].path(), &flags(&store));
    let probe = workspace().join("tests/plugins/probe");
    let out = first.client(
        &[
            "deploy",
            probe.to_str().expect("path"),
            "--target-dir",
            &plugin_target_dir(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = first.client(&["trigger", "add", "probe", r#"{"event": "slow"}"#], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Every host seals with the same master key; the admin token is the
    // first host's, which the database holds.
    let key = dirs[0].path().join("master.key");
    let mut hosts = vec![first];
    for dir in &dirs[1..] {
        std::fs::copy(&key, dir.path().join("master.key")).expect("copy the master key");
        hosts.push(ServeChild::start_with(dir.path(), &flags(&store)));
    }
    let token = std::fs::read_to_string(dirs[0].path().join("admin-token"))
        .expect("admin token")
        .trim()
        .to_owned();
    let urls: Vec<String> = hosts.iter().map(|h| h.url.clone()).collect();
    let http = reqwest::Client::new();

    let accepted: Arc<std::sync::Mutex<Vec<(String, usize)>>> = Default::default();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, urls, token) = (http.clone(), urls.clone(), token.clone());
        let (accepted, next) = (accepted.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= EVENTS {
                    return;
                }
                let host = n % HOSTS;
                let sent = http
                    .post(format!("{}/v1/events", urls[host]))
                    .bearer_auth(&token)
                    .json(&json!({ "kind": "slow", "payload": { "ms": 5, "n": n } }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                // The killed host refuses; the event was not accepted.
                let Ok(response) = sent else { continue };
                if response.status() != reqwest::StatusCode::ACCEPTED {
                    continue;
                }
                let Ok(body) = response.json::<Value>().await else {
                    continue;
                };
                if let Some(id) = body["id"].as_str() {
                    accepted.lock().expect("lock").push((id.to_owned(), host));
                }
            }
        }));
    }
    let started = Instant::now();
    while accepted.lock().expect("lock").len() < EVENTS / 2 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the burst stalled"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // SIGKILL the second host: no graceful anything, its leases just lapse.
    let mut killed = hosts.remove(1);
    killed.child.kill().expect("SIGKILL");
    killed.child.wait().expect("reaped");
    for client in clients {
        client.await.expect("client task");
    }
    let accepted = accepted.lock().expect("lock").clone();
    let on_killed = accepted.iter().filter(|(_, host)| *host == 1).count();
    assert!(
        on_killed > 0,
        "the killed host accepted events before it died"
    );
    let survivor = urls[0].clone();
    // The killed host had a backlog: deliveries it queued and never ran.
    let killed_events: std::collections::HashSet<&str> = accepted
        .iter()
        .filter(|(_, host)| *host == 1)
        .map(|(id, _)| id.as_str())
        .collect();
    let queued: Value = http
        .get(format!("{survivor}/v1/deliveries?state=queued&limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("queued")
        .json()
        .await
        .expect("json");
    let left_by_killed = queued.as_array().map_or(0, |queued| {
        queued
            .iter()
            .filter(|d| {
                d["event_id"]
                    .as_str()
                    .is_some_and(|e| killed_events.contains(e))
            })
            .count()
    });
    assert!(
        left_by_killed > 0,
        "the killed host left deliveries to take over: {queued}"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut more_than_once = 0;
    for (id, _) in &accepted {
        let event = loop {
            let response = http
                .get(format!("{survivor}/v1/events/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("get event");
            let event: Value = response.json().await.expect("json");
            assert_eq!(
                event["id"],
                id.as_str(),
                "event {id} was acknowledged but lost: {event}"
            );
            if event["deliveries"][0]["state"] == "succeeded" {
                break event;
            }
            assert!(
                Instant::now() < deadline,
                "event {id} was not delivered: {event}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let runs = event["deliveries"][0]["executions"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(runs >= 1, "{event}");
        if runs > 1 {
            more_than_once += 1;
        }
    }
    println!(
        "{} events accepted ({on_killed} by the killed host, {left_by_killed} of them still queued when it died), all delivered; {more_than_once} deliveries recorded more than one attempt",
        accepted.len()
    );
    let queued: Value = http
        .get(format!("{survivor}/v1/deliveries?state=queued"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("queued")
        .json()
        .await
        .expect("json");
    assert_eq!(queued.as_array().map(Vec::len), Some(0), "{queued}");
    for host in hosts {
        let status = host.terminate();
        assert!(status.success(), "{status}");
    }
}
