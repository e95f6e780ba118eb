//! Events end to end on the real server: fan-out with globs and filters,
//! idempotency, retries with backoff, the dead-letter list and retry by
//! hand, per-plugin concurrency, webhooks (signed, by path secret,
//! replayed), schedules on an injected clock with one catch-up after
//! downtime, connection events, cancelling on delete, and metrics.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use junction_host::events::Clock;
use junction_tests::host::{Answer, TestHost};
use junction_tests::plugins::component_bytes;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

fn manifest(triggers: Value) -> Value {
    json!({ "triggers": triggers })
}

async fn deploy(host: &TestHost, name: &str, package: &str, manifest: Value) {
    let up = host
        .upload(name, component_bytes(package), Some(&manifest), None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{name}: {}", up.text);
}

async fn send(host: &TestHost, kind: &str, payload: Value) -> Answer {
    host.post("/v1/events", &json!({ "kind": kind, "payload": payload }))
        .await
}

fn delivery_to<'a>(event: &'a Value, plugin: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no delivery to {plugin}: {event}"))
}

#[tokio::test]
async fn events_fan_out_by_glob_and_filter_once_per_idempotency_key() {
    let host = TestHost::start().await;
    deploy(
        &host,
        "all-leads",
        "hello",
        manifest(json!([{ "event": "lead.*" }])),
    )
    .await;
    deploy(
        &host,
        "new-leads",
        "hello",
        manifest(json!([{ "event": "lead.created", "filter": { "status": "new", "owner.id": { "exists": true } } }])),
    )
    .await;
    deploy(
        &host,
        "campaigns",
        "hello",
        manifest(json!([{ "event": "campaign.sent" }])),
    )
    .await;

    let sent = send(
        &host,
        "lead.created",
        json!({ "status": "new", "owner": { "id": 7 } }),
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    assert_eq!(sent.json["matched"], 2);
    let id = sent.json["id"].as_str().unwrap().to_owned();
    let event = host.settled(&id).await;
    assert_eq!(event["source"], "api");
    for plugin in ["all-leads", "new-leads"] {
        let delivery = delivery_to(&event, plugin);
        assert_eq!(delivery["state"], "succeeded", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        let execution_id = delivery["executions"][0].as_str().unwrap();
        let record = host.get(&format!("/v1/executions/{execution_id}")).await;
        assert_eq!(record.json["event_id"], id.as_str());
        assert_eq!(record.json["delivery_id"], delivery["id"]);
        assert_eq!(record.json["attempt"], 1);
        // The plugin saw the event's id, so it can deduplicate.
        assert_eq!(record.json["output"]["event_id"], id.as_str());
        assert_eq!(record.json["output"]["payload"]["owner"]["id"], 7);
    }

    // The filter holds the second plugin back; the glob still matches.
    let other = send(
        &host,
        "lead.created",
        json!({ "status": "old", "owner": { "id": 1 } }),
    )
    .await;
    assert_eq!(other.json["matched"], 1);
    let no_owner = send(&host, "lead.created", json!({ "status": "new" })).await;
    assert_eq!(no_owner.json["matched"], 1);
    let updated = send(&host, "lead.updated", json!({})).await;
    assert_eq!(updated.json["matched"], 1);
    let event = host.settled(updated.json["id"].as_str().unwrap()).await;
    delivery_to(&event, "all-leads");

    // An unknown kind is accepted and goes nowhere.
    let nobody = send(&host, "invoice.paid", json!({ "n": 1 })).await;
    assert_eq!(nobody.status, StatusCode::ACCEPTED);
    assert_eq!(nobody.json["matched"], 0);

    // The same idempotency key returns the first event and queues nothing.
    let body =
        json!({ "kind": "campaign.sent", "payload": { "c": 1 }, "idempotency_key": "campaign-1" });
    let first = host.post("/v1/events", &body).await;
    let again = host.post("/v1/events", &body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(first.json["id"], again.json["id"]);
    assert_eq!(again.json["duplicate"], true);
    assert_eq!(again.json["matched"], 1);
    host.settled(first.json["id"].as_str().unwrap()).await;
    let runs = host.get("/v1/executions?plugin=campaigns").await;
    assert_eq!(runs.json.as_array().unwrap().len(), 1, "{}", runs.text);

    // Bad input is refused with the reason.
    let bad_kind = send(&host, "Lead Created", json!({})).await;
    assert_eq!(bad_kind.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_kind.message().contains("Lead Created"),
        "{}",
        bad_kind.text
    );
    let big = send(
        &host,
        "lead.created",
        json!({ "blob": "x".repeat(1024 * 1024 + 10) }),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.text);
    let not_json = host
        .send(
            host.request(Method::POST, "/v1/events")
                .header("content-type", "application/json")
                .body("{\"kind\": "),
        )
        .await;
    assert_eq!(
        not_json.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_json.text
    );
    let no_kind = host.post("/v1/events", &json!({ "payload": {} })).await;
    assert!(no_kind.status.is_client_error());
    assert!(no_kind.message().contains("kind"), "{}", no_kind.text);
    assert_eq!(
        host.get("/v1/events/nope").await.status,
        StatusCode::NOT_FOUND
    );

    // A bad trigger refuses the deploy with the reason.
    for (trigger, needle) in [
        (json!({ "schedule": "61 * * * *" }), "not a cron expression"),
        (
            json!({ "event": "lead.*", "filter": { "x": [1] } }),
            "filter `x`",
        ),
        (json!({ "webhook": "Bad Name" }), "webhook name"),
    ] {
        let up = host
            .upload(
                "bad",
                component_bytes("hello"),
                Some(&manifest(json!([trigger]))),
                None,
            )
            .await;
        assert_eq!(up.status, StatusCode::BAD_REQUEST, "{}", up.text);
        assert!(up.message().contains("triggers[0]"), "{}", up.text);
        assert!(up.message().contains(needle), "{}", up.text);
    }
    // API triggers: added, listed with the manifest's, removed.
    let added = host
        .create(
            "/v1/triggers",
            &json!({ "plugin": "campaigns", "trigger": { "event": "campaign.scheduled" } }),
        )
        .await;
    let trigger_id = added.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        send(&host, "campaign.scheduled", json!({})).await.json["matched"],
        1
    );
    let listed = host.get("/v1/triggers?plugin=campaigns").await;
    assert_eq!(listed.json.as_array().unwrap().len(), 2, "{}", listed.text);
    let manifest_one = host.delete("/v1/triggers/campaigns.m0").await;
    assert_eq!(manifest_one.status, StatusCode::CONFLICT);
    assert_eq!(
        host.delete(&format!("/v1/triggers/{trigger_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&host, "campaign.scheduled", json!({})).await.json["matched"],
        0
    );
    let bad = host
        .post(
            "/v1/triggers",
            &json!({ "plugin": "campaigns", "trigger": { "schedule": "nope" } }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = host
        .post(
            "/v1/triggers",
            &json!({ "plugin": "ghost", "trigger": { "event": "x" } }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Metrics count what happened.
    let metrics = host
        .http
        .get(format!("{}/metrics", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("junction_events_accepted_total{source=\"api\"}"),
        "{text}"
    );
    assert!(
        text.contains("junction_deliveries_total{outcome=\"succeeded\"}"),
        "{text}"
    );
    assert!(
        text.contains("junction_execution_duration_seconds_count{plugin=\"all-leads\"}"),
        "{text}"
    );
    assert!(text.contains("junction_delivery_queue_depth"), "{text}");
    assert!(text.contains("junction_plugin_instances_in_use"), "{text}");
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_and_retried_by_hand() {
    let host = TestHost::start_with(|config| {
        config.dispatch.retry_base = Duration::from_millis(20);
    })
    .await;
    deploy(
        &host,
        "flaky",
        "probe",
        manifest(json!([{ "event": "flaky", "retries": 3 }])),
    )
    .await;
    deploy(
        &host,
        "fragile",
        "probe",
        manifest(json!([{ "event": "fail", "retries": 1 }, { "event": "flaky", "retries": 1 }])),
    )
    .await;

    // Fails twice, then succeeds on the third attempt.
    let sent = send(&host, "flaky", json!({ "fail_times": 2 })).await;
    assert_eq!(sent.json["matched"], 2);
    let event = host.settled(sent.json["id"].as_str().unwrap()).await;
    let flaky = delivery_to(&event, "flaky");
    assert_eq!(flaky["state"], "succeeded", "{flaky}");
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["executions"].as_array().unwrap().len(), 3);
    let last = host
        .get(&format!(
            "/v1/executions/{}",
            flaky["executions"][2].as_str().unwrap()
        ))
        .await;
    assert_eq!(last.json["status"], "ok");
    assert_eq!(last.json["attempt"], 3);
    let first = host
        .get(&format!(
            "/v1/executions/{}",
            flaky["executions"][0].as_str().unwrap()
        ))
        .await;
    assert_eq!(first.json["status"], "failed");

    // With one retry the same event dies after two attempts...
    let fragile = delivery_to(&event, "fragile");
    assert_eq!(fragile["state"], "dead", "{fragile}");
    assert_eq!(fragile["attempts"], 2);
    assert!(
        fragile["last_error"]
            .as_str()
            .unwrap()
            .contains("plugin-error"),
        "{fragile}"
    );
    let dead = host.get("/v1/deliveries?state=dead").await;
    let dead_ids: Vec<&str> = dead
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(dead_ids, [fragile["id"].as_str().unwrap()], "{}", dead.text);

    // ...and a retry by hand runs it once more: the third attempt succeeds.
    let delivery_id = fragile["id"].as_str().unwrap();
    let retried = host
        .post(&format!("/v1/deliveries/{delivery_id}/retry"), &json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    let event = host.settled(sent.json["id"].as_str().unwrap()).await;
    let fragile = delivery_to(&event, "fragile");
    assert_eq!(fragile["state"], "succeeded", "{fragile}");
    assert_eq!(fragile["attempts"], 3);
    assert!(
        host.get("/v1/deliveries?state=dead")
            .await
            .json
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Only dead or cancelled deliveries can be retried.
    let again = host
        .post(&format!("/v1/deliveries/{delivery_id}/retry"), &json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        host.post("/v1/deliveries/nope/retry", &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // One that always fails is dead-lettered, and a hand retry dies again.
    let always = send(&host, "fail", json!({})).await;
    let event = host.settled(always.json["id"].as_str().unwrap()).await;
    let delivery = delivery_to(&event, "fragile");
    assert_eq!(delivery["state"], "dead");
    let id = delivery["id"].as_str().unwrap();
    host.post(&format!("/v1/deliveries/{id}/retry"), &json!({}))
        .await;
    let event = host.settled(always.json["id"].as_str().unwrap()).await;
    let delivery = delivery_to(&event, "fragile");
    assert_eq!(delivery["state"], "dead");
    assert_eq!(delivery["attempts"], 3);
    let bad_state = host.get("/v1/deliveries?state=lost").await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_plugins_concurrency_limit_holds_under_a_burst() {
    let host = TestHost::start().await;
    let limited = json!({ "triggers": [{ "event": "slow" }], "limits": { "concurrency": 2 } });
    deploy(&host, "slow", "probe", limited).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let sent = send(&host, "slow", json!({ "ms": 60 })).await;
        assert_eq!(sent.status, StatusCode::ACCEPTED);
        ids.push(sent.json["id"].as_str().unwrap().to_owned());
    }
    let mut spans = Vec::new();
    for id in &ids {
        let event = host.settled(id).await;
        let delivery = delivery_to(&event, "slow");
        assert_eq!(delivery["state"], "succeeded", "{delivery}");
        let record = host
            .get(&format!(
                "/v1/executions/{}",
                delivery["executions"][0].as_str().unwrap()
            ))
            .await;
        let start = record.json["started_at_ms"].as_f64().unwrap();
        spans.push((start, start + record.json["wall_time_ms"].as_f64().unwrap()));
    }
    // At no moment did more than two run: count overlaps at each start
    // (starts are whole milliseconds, so a span must reach a full
    // millisecond past another's start to overlap it).
    let most = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start + 1.0 < *e)
                .count()
        })
        .max()
        .unwrap();
    assert!(most <= 2, "{most} ran at once: {spans:?}");
    assert!(most >= 1);
    // Twelve 60 ms sleeps two at a time take at least 6 rounds.
    let first = spans.iter().map(|s| s.0).fold(f64::MAX, f64::min);
    let last = spans.iter().map(|s| s.1).fold(0.0, f64::max);
    assert!(last - first >= 5.0 * 60.0, "{spans:?}");
}

fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn webhooks_accept_good_signatures_and_path_secrets_only() {
    let host = TestHost::start().await;
    deploy(
        &host,
        "hooked",
        "hello",
        manifest(json!([{ "webhook": "mailchimp" }, { "webhook": "stripe", "filter": { "body.type": "charge.succeeded" } }])),
    )
    .await;
    let post = |path: &str, body: &str, headers: Vec<(&str, String)>| {
        let mut request = host
            .http
            .post(format!("{}{path}", host.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let body = r#"{"type":"subscribe","data":{"email":"a@example.com"}}"#;

    // No secret yet: refused, with how to set one.
    let early = post("/hooks/hooked/mailchimp", body, vec![]).await.unwrap();
    assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
    assert!(early.text().await.unwrap().contains("junction hook secret"));

    let secret = "whs_0123456789abcdef0123456789abcdef";
    let set = host
        .put(
            "/v1/hooks/hooked/mailchimp/secret",
            &json!({ "secret": secret }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert!(!set.text.contains(secret), "the secret is write-only");
    let short = host
        .put(
            "/v1/hooks/hooked/mailchimp/secret",
            &json!({ "secret": "short" }),
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    let missing = host
        .put("/v1/hooks/hooked/nope/secret", &json!({ "secret": secret }))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A good signature: accepted, delivered, body and headers in the payload.
    let now = unix_now();
    let signature = sign(secret, now, body.as_bytes());
    let good = post(
        "/hooks/hooked/mailchimp",
        body,
        vec![
            ("X-Junction-Timestamp", now.to_string()),
            ("X-Junction-Signature", signature.clone()),
            ("X-Request-Id", "req-1".into()),
            ("Authorization", "Bearer must-not-be-kept".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(good.status(), StatusCode::ACCEPTED);
    let accepted: Value = good.json().await.unwrap();
    assert_eq!(accepted["matched"], 1);
    let event = host.settled(accepted["id"].as_str().unwrap()).await;
    assert_eq!(event["kind"], "webhook.mailchimp");
    assert_eq!(event["source"], "webhook");
    assert_eq!(event["payload"]["body"]["data"]["email"], "a@example.com");
    assert_eq!(event["payload"]["headers"]["x-request-id"], "req-1");
    assert!(event["payload"]["headers"].get("authorization").is_none());
    assert!(
        event["payload"]["headers"]
            .get("x-junction-signature")
            .is_none()
    );
    assert_eq!(delivery_to(&event, "hooked")["state"], "succeeded");

    // The same request again is a replay.
    let replay = post(
        "/hooks/hooked/mailchimp",
        body,
        vec![
            ("X-Junction-Timestamp", now.to_string()),
            ("X-Junction-Signature", signature),
        ],
    )
    .await
    .unwrap();
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    // A wrong signature, a tampered body and a stale timestamp are refused.
    let wrong = post(
        "/hooks/hooked/mailchimp",
        body,
        vec![
            ("X-Junction-Timestamp", now.to_string()),
            (
                "X-Junction-Signature",
                sign("whs_other-secret-000000", now, body.as_bytes()),
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let tampered = post(
        "/hooks/hooked/mailchimp",
        r#"{"type":"unsubscribe"}"#,
        vec![
            ("X-Junction-Timestamp", now.to_string()),
            ("X-Junction-Signature", sign(secret, now, body.as_bytes())),
        ],
    )
    .await
    .unwrap();
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
    let stale_at = now - 301;
    let stale = post(
        "/hooks/hooked/mailchimp",
        body,
        vec![
            ("X-Junction-Timestamp", stale_at.to_string()),
            (
                "X-Junction-Signature",
                sign(secret, stale_at, body.as_bytes()),
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert!(stale.text().await.unwrap().contains("5 minutes"));
    let unsigned = post("/hooks/hooked/mailchimp", body, vec![]).await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);

    // The secret in the path (MailChimp cannot sign), with a form body.
    let by_path = host
        .http
        .post(format!("{}/hooks/hooked/mailchimp/{secret}", host.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=subscribe&data%5Bemail%5D=b%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(by_path.status(), StatusCode::ACCEPTED);
    let accepted: Value = by_path.json().await.unwrap();
    let event = host.settled(accepted["id"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["body"]["data[email]"], "b@example.com");
    let wrong_path = post(
        "/hooks/hooked/mailchimp/whs_not-the-secret-at-all",
        body,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(wrong_path.status(), StatusCode::UNAUTHORIZED);
    let check = host
        .http
        .get(format!("{}/hooks/hooked/mailchimp/{secret}", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);

    // The filter on a webhook trigger: matched only for the right body.
    let stripe_secret = "whs_stripe-secret-0123456789";
    host.put(
        "/v1/hooks/hooked/stripe/secret",
        &json!({ "secret": stripe_secret }),
    )
    .await;
    let other = post(
        &format!("/hooks/hooked/stripe/{stripe_secret}"),
        r#"{"type":"charge.failed"}"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(other.json::<Value>().await.unwrap()["matched"], 0);
    let wanted = post(
        &format!("/hooks/hooked/stripe/{stripe_secret}"),
        r#"{"type":"charge.succeeded"}"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(wanted.json::<Value>().await.unwrap()["matched"], 1);

    // Unknown plugins and hooks, bad JSON, oversized bodies.
    assert_eq!(
        post("/hooks/ghost/mailchimp", body, vec![])
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post("/hooks/hooked/ghost", body, vec![])
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let bad_json = post(
        &format!("/hooks/hooked/mailchimp/{secret}"),
        "{not json",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    let huge = "x".repeat(2 * 1024 * 1024);
    let too_big = post(&format!("/hooks/hooked/mailchimp/{secret}"), &huge, vec![])
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The trigger list shows the hook's path, never its secret.
    let triggers = host.get("/v1/triggers").await;
    assert!(triggers.text.contains("/hooks/hooked/mailchimp"));
    assert!(!triggers.text.contains(secret));
    // The secret is sealed in the redb file.
    drop(triggers);
    let mut host = host;
    host.stop().await;
    let db = std::fs::read(host.dir.path().join("junction.redb")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

async fn scheduled(host: &TestHost) -> Vec<Value> {
    let answer = host.get("/v1/executions?plugin=ticker").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer
        .json
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("the executions answer is a list: {}", answer.text))
}

#[tokio::test]
async fn schedules_fire_on_the_clock_and_catch_up_once_after_downtime() {
    // 2026-01-01T00:00:30Z.
    let start = 1_767_225_630_000u64;
    let clock = Clock::manual(start);
    let mut host = TestHost::start_with(|config| config.clock = clock.clone()).await;
    deploy(
        &host,
        "ticker",
        "hello",
        manifest(json!([{ "schedule": "*/5 * * * *", "timezone": "Europe/Berlin" }])),
    )
    .await;
    let triggers = host.get("/v1/triggers?plugin=ticker").await;
    // 00:05 UTC is the next five-minute mark in Berlin too.
    assert_eq!(
        triggers.json[0]["next_fire_at_ms"],
        start - 30_000 + 300_000,
        "{}",
        triggers.text
    );

    // Nothing before the time.
    clock.advance(Duration::from_secs(200));
    // That nothing fires has no event to wait for: give the scheduler time
    // to (wrongly) act, then look.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(scheduled(&host).await.is_empty());
    // At 00:05 it fires once.
    clock.advance(Duration::from_secs(70));
    let deadline = Instant::now() + Duration::from_secs(20);
    while scheduled(&host).await.is_empty() {
        assert!(Instant::now() < deadline, "the schedule did not fire");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs = scheduled(&host).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["event_kind"], "schedule");
    let record = host
        .get(&format!(
            "/v1/executions/{}",
            runs[0]["id"].as_str().unwrap()
        ))
        .await;
    let payload = &record.json["output"]["payload"];
    assert_eq!(payload["scheduled_for_ms"], start - 30_000 + 300_000);
    assert_eq!(payload["scheduled_for"], "2026-01-01T01:05:00+01:00");
    assert_eq!(payload["missed"], 0);

    // Down for an hour: one catch-up run for the twelve missed, not twelve.
    host.stop().await;
    clock.advance(Duration::from_secs(3600));
    host.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while scheduled(&host).await.len() < 2 {
        assert!(Instant::now() < deadline, "no catch-up run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only one catch-up run: give a second (wrong) one time to appear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = scheduled(&host).await;
    assert_eq!(runs.len(), 2, "one catch-up run");
    let record = host
        .get(&format!(
            "/v1/executions/{}",
            runs[0]["id"].as_str().unwrap()
        ))
        .await;
    let payload = &record.json["output"]["payload"];
    assert_eq!(payload["missed"], 11, "{payload}");
    assert_eq!(
        payload["scheduled_for_ms"],
        start - 30_000 + 300_000 + 3_600_000
    );
    host.stop().await;
}

#[tokio::test]
async fn connection_changes_and_deletes_reach_plugins() {
    let host = TestHost::start_with(|config| config.dispatch.per_plugin = 1).await;
    deploy(
        &host,
        "watcher",
        "hello",
        manifest(json!([{ "connection": "connected" }, { "event": "connection.*" }])),
    )
    .await;
    host.create("/v1/services", &json!({ "name": "static-api", "auth_type": "bearer", "base_url": "https://api.example.com" }))
        .await;
    host.create(
        "/v1/connections",
        &json!({ "link_name": "static", "service": "static-api", "credentials": { "type": "bearer", "token": "tok-static-123" } }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs = host.get("/v1/executions?plugin=watcher").await.json;
        if !runs.as_array().unwrap().is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "no connection event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(runs[0]["event_kind"], "connection.connected");
    let record = host
        .get(&format!(
            "/v1/executions/{}",
            runs[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(record.json["output"]["payload"]["link_name"], "static");
    assert!(!record.text.contains("tok-static-123"));

    // Deleting a plugin cancels what is queued for it, with the reason.
    deploy(
        &host,
        "sleepy",
        "probe",
        json!({ "triggers": [{ "event": "slow" }], "limits": { "concurrency": 1 } }),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            send(&host, "slow", json!({ "ms": 300 })).await.json["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Wait until the first is running, so the delete finds one running and four queued.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !host
        .metric_at_least("junction_deliveries_running", 1.0)
        .await
    {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        host.delete("/v1/plugins/sleepy").await.status,
        StatusCode::NO_CONTENT
    );
    let mut cancelled = 0;
    for id in &ids {
        let event = host.settled(id).await;
        let delivery = delivery_to(&event, "sleepy");
        if delivery["state"] == "cancelled" {
            cancelled += 1;
            assert!(
                delivery["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("was deleted"),
                "{delivery}"
            );
        }
    }
    assert!(cancelled >= 3, "{cancelled} of 5 cancelled");
    assert!(
        host.get("/v1/triggers?plugin=sleepy")
            .await
            .json
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn events_tail_streams_executions_as_they_are_recorded() {
    use futures::StreamExt;
    let host = TestHost::start().await;
    deploy(
        &host,
        "echo",
        "hello",
        manifest(json!([{ "event": "ping" }])),
    )
    .await;
    deploy(
        &host,
        "quiet",
        "hello",
        manifest(json!([{ "event": "ping" }])),
    )
    .await;
    let response = host
        .request(Method::GET, "/v1/executions/stream?plugin=echo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = response.bytes_stream();
    let sent = send(&host, "ping", json!({ "n": 1 })).await;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text.contains("\n\n") || !text.contains("event: execution") {
        let chunk = tokio::time::timeout_at(deadline.into(), body.next())
            .await
            .expect("an execution arrives")
            .expect("the stream is open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let summary: Value = serde_json::from_str(data).unwrap();
    assert_eq!(summary["plugin"], "echo", "the filter keeps `quiet` out");
    assert_eq!(summary["event_id"], sent.json["id"]);
    assert_eq!(summary["attempt"], 1);
    // A bad filter is refused before the stream starts.
    let bad = host.get("/v1/executions/stream?status=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // A follower does not hold up shutdown.
    let mut host = host;
    let stopping = Instant::now();
    host.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(30),
        "shutdown waited for the stream to end"
    );
}

/// The issue's "done when": mailchimp-sync deployed with its manifest's
/// triggers runs on a `campaign.sync` event and on MailChimp's own webhook.
#[tokio::test]
async fn mailchimp_sync_runs_on_an_event_and_on_mailchimps_webhook() {
    use junction_tests::mailchimp::{Member, MockMailchimp};
    use junction_tests::zoho::MockCrm;
    let host = TestHost::start_with(|config| {
        config.dispatch.retry_base = Duration::from_millis(20);
    })
    .await;
    let mailchimp = MockMailchimp::start("mc-token-ev", "unused-us6").await;
    let crm = MockCrm::start("crm-token-ev").await;
    let member = |i: usize| {
        Member::new(
            &format!("e{i}@example.com"),
            "First",
            "Last",
            "2026-11-01T10:00:00+00:00",
        )
    };
    mailchimp.add_campaign("c1", "list1", (0..3).map(member).collect());
    mailchimp.add_campaign("c2", "list2", (3..5).map(member).collect());
    // MailChimp's `https://{dc}.api.mailchimp.com/3.0`, with the mock's port.
    let base_url = format!("http://{{dc}}:{}/3.0", mailchimp.addr.port());
    host.create(
        "/v1/services",
        &json!({ "name": "mailchimp-mock", "auth_type": "bearer", "base_url": base_url }),
    )
    .await;
    host.create(
        "/v1/connections",
        &json!({ "link_name": "mailchimp", "service": "mailchimp-mock",
                 "credentials": { "type": "bearer", "token": "mc-token-ev" },
                 "metadata": { "dc": mailchimp.addr.ip().to_string() } }),
    )
    .await;
    host.create(
        "/v1/services",
        &json!({ "name": "zoho-mock", "auth_type": "bearer", "base_url": "{api_domain}/crm/v7",
                 "placement": { "in": "header", "name": "Authorization", "template": "Zoho-oauthtoken {token}" } }),
    )
    .await;
    host.create(
        "/v1/connections",
        &json!({ "link_name": "zohocrm", "service": "zoho-mock",
                 "credentials": { "type": "bearer", "token": "crm-token-ev" },
                 "metadata": { "api_domain": crm.api_domain() } }),
    )
    .await;
    let manifest = junction_tests::plugins::example_manifest_json("mailchimp-sync");
    deploy(&host, "mailchimp-sync", "mailchimp-sync", manifest).await;

    let sent = send(&host, "campaign.sync", json!({ "campaign_id": "c1" })).await;
    assert_eq!(sent.json["matched"], 1, "{}", sent.text);
    let event = host.settled(sent.json["id"].as_str().unwrap()).await;
    assert_eq!(
        delivery_to(&event, "mailchimp-sync")["state"],
        "succeeded",
        "{event}"
    );
    assert_eq!(crm.lead_count(), 3);

    // MailChimp's webhook: form-encoded, secret in the path.
    let secret = "whs_mailchimp-0123456789abcdef";
    host.put(
        "/v1/hooks/mailchimp-sync/mailchimp/secret",
        &json!({ "secret": secret }),
    )
    .await;
    let hook = host
        .http
        .post(format!("{}/hooks/mailchimp-sync/mailchimp/{secret}", host.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=campaign&fired_at=2026-11-28+10%3A00%3A00&data%5Bid%5D=c2&data%5Bstatus%5D=sent&data%5Blist_id%5D=list2")
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), StatusCode::ACCEPTED);
    let accepted: Value = hook.json().await.unwrap();
    assert_eq!(accepted["matched"], 1);
    let event = host.settled(accepted["id"].as_str().unwrap()).await;
    assert_eq!(
        delivery_to(&event, "mailchimp-sync")["state"],
        "succeeded",
        "{event}"
    );
    assert_eq!(crm.lead_count(), 5);
    // Other notices are filtered out by the trigger: nothing runs.
    let subscribe = host
        .http
        .post(format!(
            "{}/hooks/mailchimp-sync/mailchimp/{secret}",
            host.url
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=subscribe&data%5Bemail%5D=x%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(subscribe.json::<Value>().await.unwrap()["matched"], 0);
}
