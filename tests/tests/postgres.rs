//! The real server on the PostgreSQL backend (a throwaway cluster started
//! by scripts/test.sh): what a host does on redb it does on PostgreSQL —
//! deploy, invoke, accept and run events with idempotency, keep it all
//! across a restart — and a second host on the same database serves the
//! plugins, connections and admin token the first one stored.

use std::time::{Duration, Instant};

use junction_tests::host::TestHost;
use junction_tests::plugins::component_bytes;
use junction_tests::postgres::fresh_database;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn on_postgres() -> TestHost {
    let store = fresh_database().await;
    TestHost::start_with(move |config| config.store = store).await
}

async fn settled(host: &TestHost, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let event = host.get(&format!("/v1/events/{id}")).await;
        assert_eq!(event.status, StatusCode::OK, "{}", event.text);
        let done = event.json["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .all(|d| {
                matches!(
                    d["state"].as_str(),
                    Some("succeeded" | "dead" | "cancelled")
                )
            });
        if done {
            return event.json;
        }
        assert!(
            Instant::now() < deadline,
            "event {id} did not settle: {}",
            event.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_on_postgres_deploys_invokes_runs_events_and_keeps_them_across_a_restart() {
    let mut host = on_postgres().await;
    let up = host
        .upload(
            "hello",
            component_bytes("hello"),
            Some(&json!({"triggers": [{"event": "lead.*"}]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.json["version"], 1);

    let run = host.invoke("hello", "hello", json!({"name": "Ada"})).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Ada");

    let body = json!({"kind": "lead.created", "payload": {"id": 1}, "idempotency_key": "lead-1"});
    let sent = host.post("/v1/events", &body).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    assert_eq!(sent.json["matched"], 1);
    let id = sent.json["id"].as_str().expect("event id").to_owned();
    let again = host.post("/v1/events", &body).await;
    assert_eq!(
        again.json["id"],
        id.as_str(),
        "the key answers with the first event"
    );
    let event = settled(&host, &id).await;
    assert_eq!(event["deliveries"][0]["state"], "succeeded", "{event}");

    host.restart().await;
    let plugin = host.get("/v1/plugins/hello").await;
    assert_eq!(plugin.status, StatusCode::OK, "{}", plugin.text);
    let run = host
        .invoke("hello", "hello", json!({"name": "Grace"}))
        .await;
    assert_eq!(
        run.json["output"]["payload"]["name"], "Grace",
        "{}",
        run.text
    );
    let executions = host.get("/v1/executions?plugin=hello").await;
    let listed = executions
        .json
        .as_array()
        .map(Vec::len)
        .unwrap_or_else(|| panic!("executions: {}", executions.text));
    assert_eq!(
        listed, 3,
        "two invokes and one delivery: {}",
        executions.text
    );
    let kept = host.get(&format!("/v1/events/{id}")).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_database_serves_what_the_first_stored() {
    let first = on_postgres().await;
    let service = first
        .create(
            "/v1/services",
            &json!({"name": "crm", "auth_type": "bearer", "base_url": "https://crm.example.com"}),
        )
        .await;
    assert_eq!(service.status, StatusCode::CREATED, "{}", service.text);
    let connection = first
        .create(
            "/v1/connections",
            &json!({"link_name": "crm", "service": "crm", "credentials": {"type": "bearer", "token": "tok-shared-1234"}}),
        )
        .await;
    assert_eq!(
        connection.status,
        StatusCode::CREATED,
        "{}",
        connection.text
    );
    let up = first
        .upload("hello", component_bytes("hello"), None, None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);

    let second = first.beside().await;
    let run = second
        .invoke("hello", "hello", json!({"name": "Lin"}))
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Lin");
    let seen = second.get("/v1/connections/crm").await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    assert!(!seen.text.contains("tok-shared-1234"), "{}", seen.text);
    // What the second host records, the first one lists.
    let id = run.json["id"].as_str().expect("execution id");
    let record = first.get(&format!("/v1/executions/{id}")).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_refresh_an_expired_token_once() {
    use junction_tests::oauth::{self, FakeProvider, service_json};
    let first = on_postgres().await;
    let provider = FakeProvider::start().await;
    first
        .create("/v1/services", &service_json("fake", &provider, json!({})))
        .await;
    first
        .create(
            "/v1/connections",
            &json!({"link_name": "fake", "service": "fake"}),
        )
        .await;
    // Tokens that expire within the refresh margin: every call wants a refresh.
    provider.lock().expires_in = "60".into();
    oauth::connect(&first, "fake").await;
    provider.lock().expires_in = "3600".into();
    // A slow token endpoint: every host is asking while the refresh runs.
    provider.lock().token_delay = Duration::from_millis(500);
    let up = first
        .upload(
            "probe",
            component_bytes("probe"),
            Some(&json!({"connections": ["fake"]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let second = first.beside().await;
    let third = first.beside().await;
    let hosts = std::sync::Arc::new([first, second, third]);

    let mut calls = Vec::new();
    for n in 0..600 {
        let hosts = hosts.clone();
        calls.push(tokio::spawn(async move {
            hosts[n % 3]
                .invoke(
                    "probe",
                    "call",
                    json!({"url": "/api/me", "connection": "fake"}),
                )
                .await
        }));
    }
    for call in calls {
        let run = call.await.expect("call task");
        assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    }
    // The provider rotates refresh tokens and revokes the grant when one is
    // presented twice: a second refresh on any host would have failed calls.
    assert_eq!(provider.lock().refresh_requests, 1);
}
