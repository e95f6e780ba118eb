//! The crash test: `junction serve` as a child process takes a burst of
//! 2,000 events from several clients and is killed with SIGKILL halfway.
//! After a restart on the same data directory (the redb file must open),
//! every event that was answered 202 is delivered and its execution recorded,
//! including the hundreds still queued when the process died.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const EVENTS: usize = 2000;
const CLIENTS: usize = 8;

/// GETs `url` with the admin token and decodes the JSON answer.
async fn get_json(http: &reqwest::Client, token: &str, url: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON answer")
}

fn token(data_dir: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(data_dir).join("admin-token"))
        .expect("admin token")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_event_is_delivered_after_a_sigkill() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = ServeChild::start_with(data.path(), &["--plugin-concurrency", "1"]);
    // The probe sleeps 5 ms per `slow` event and runs one at a time, so a
    // backlog is queued when the kill comes.
    let probe = workspace().join("tests/plugins/probe");
    let out = server.client(
        &[
            "deploy",
            probe.to_str().expect("path"),
            "--target-dir",
            &plugin_target_dir(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.client(&["trigger", "add", "probe", r#"{"event": "slow"}"#], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = token(&server.data_dir);
    let http = reqwest::Client::new();

    // The burst: clients send until the server dies under them.
    let accepted: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, url, token) = (http.clone(), server.url.clone(), token.clone());
        let (accepted, next) = (accepted.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= EVENTS {
                    return;
                }
                let sent = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(&token)
                    .json(&json!({ "kind": "slow", "payload": { "ms": 5, "n": n } }))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status() != reqwest::StatusCode::ACCEPTED {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                if let Some(id) = body["id"].as_str() {
                    accepted.lock().expect("lock").push(id.to_owned());
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
    // SIGKILL: no graceful anything.
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    for client in clients {
        client.await.expect("client task");
    }
    let accepted = accepted.lock().expect("lock").clone();
    assert!(
        accepted.len() >= EVENTS / 2 && accepted.len() < EVENTS,
        "{}",
        accepted.len()
    );
    drop(server);

    // The redb file opens cleanly and the queue picks up where it stopped.
    let server = ServeChild::start(data.path());
    let url = server.url.clone();
    let waiting: Value = get_json(
        &http,
        &token,
        &format!("{url}/v1/deliveries?state=queued&limit=1000"),
    )
    .await;
    let waiting = waiting.as_array().map_or(0, Vec::len);
    assert!(
        waiting >= 100,
        "only {waiting} deliveries were queued at the kill"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut executions = std::collections::HashSet::new();
    for id in &accepted {
        let delivery = loop {
            let event: Value = get_json(&http, &token, &format!("{url}/v1/events/{id}")).await;
            assert_eq!(
                event["id"],
                id.as_str(),
                "event {id} was acknowledged but lost: {event}"
            );
            let delivery = event["deliveries"][0].clone();
            if delivery["state"] == "succeeded" {
                break delivery;
            }
            assert!(
                Instant::now() < deadline,
                "event {id} was not delivered: {event}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let execution = delivery["executions"]
            .as_array()
            .and_then(|e| e.last())
            .and_then(Value::as_str)
            .expect("an execution")
            .to_owned();
        let record = http
            .get(format!("{url}/v1/executions/{execution}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get execution");
        assert_eq!(
            record.status(),
            reqwest::StatusCode::OK,
            "execution {execution} of event {id} is not recorded"
        );
        let record: Value = record.json().await.expect("json");
        assert_eq!(record["event_id"], id.as_str());
        assert_eq!(record["status"], "ok");
        executions.insert(execution);
    }
    assert_eq!(executions.len(), accepted.len());
    let queued: Value = get_json(&http, &token, &format!("{url}/v1/deliveries?state=queued")).await;
    assert_eq!(queued.as_array().map(Vec::len), Some(0), "{queued}");
    let status = server.terminate();
    assert!(status.success(), "{status}");
}
