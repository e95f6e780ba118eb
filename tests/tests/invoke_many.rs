//! `send-many` (the SDKs' `send_all`; `invoke-many` in the 0.1.0 contract,
//! the same code in the host): several outbound calls from one execution at
//! once. The server counts the requests it holds at the same
//! time, so the in-flight limit is seen from the outside; each request of a
//! batch counts against the call budget; a batch cannot make the host hold
//! more response bytes than the plugin could take, nor more requests than
//! its whole budget.

use junction_host::Language;
use junction_host::manifest::Manifest;
use junction_host::runtime::{Failure, LoadedPlugin};
use junction_tests::echo::EchoServer;
use junction_tests::harness::Harness;
use junction_tests::plugins::in_language;
use serde_json::{Value, json};

fn manifest(limits: Value) -> Manifest {
    Manifest::from_json(&json!({ "limits": limits }).to_string()).expect("manifest")
}

/// `package` (a probe) loaded as `probe`, allowed to call `api`, with
/// these manifest limits.
fn probe_calling(h: &Harness, package: &str, api: &EchoServer, limits: Value) -> LoadedPlugin {
    h.load(package, "probe", &[], &[api.origin()], &manifest(limits))
}

fn held_calls(api: &EchoServer, n: usize) -> Value {
    let call = json!({"url": api.url("/hold?ms=150")});
    Value::Array(vec![call; n])
}

fn statuses(batch: &Value) -> Vec<Option<u64>> {
    batch
        .as_array()
        .expect("a batch's answers")
        .iter()
        .map(|answer| answer["status"].as_u64())
        .collect()
}

junction_tests::each_language!(
    a_batch_runs_at_once_up_to_the_in_flight_limit,
    each_request_of_a_batch_counts_against_the_budget
);

async fn a_batch_runs_at_once_up_to_the_in_flight_limit(language: Language) {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let probe = in_language("probe", language);

    // The default limit: 6 in flight.
    let plugin = probe_calling(&h, &probe, &api, json!({}));
    let record = h
        .run(&plugin, "batches", json!([held_calls(&api, 20)]))
        .await;
    let answers = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    assert_eq!(statuses(&answers[0]), vec![Some(200); 20]);
    assert_eq!(answers[0][0]["body"], "held");
    assert_eq!(
        api.most_held_at_once(),
        6,
        "20 held requests with a limit of 6 in flight"
    );
    assert_eq!(api.journal.all().len(), 20);
    assert_eq!(record.calls.len(), 20);
    assert!(record.calls.iter().all(|c| c.status == Some(200)));

    // The manifest's own limit.
    let api = EchoServer::start().await;
    let plugin = probe_calling(&h, &probe, &api, json!({"http-concurrency": 3}));
    let record = h
        .run(&plugin, "batches", json!([held_calls(&api, 7)]))
        .await;
    let answers = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    assert_eq!(statuses(&answers[0]), vec![Some(200); 7]);
    assert_eq!(api.most_held_at_once(), 3);
}

#[tokio::test]
async fn a_width_of_zero_or_above_the_ceiling_is_refused() {
    let h = Harness::new().await;
    let zero = Manifest::from_json(r#"{"limits": {"http-concurrency": 0}}"#)
        .expect_err("a width of 0 is refused");
    assert!(
        zero.to_string()
            .contains("limits.http-concurrency must be above 0"),
        "{zero}"
    );
    let (component, bytes) = h.compiled("probe");
    let Err(error) = h.runtime.load(
        "probe",
        &component,
        bytes,
        Default::default(),
        &manifest(json!({"http-concurrency": 1000})),
    ) else {
        panic!("a width above the ceiling is refused");
    };
    assert!(
        error.to_string().contains("limits.http-concurrency 1000"),
        "{error}"
    );
}

async fn each_request_of_a_batch_counts_against_the_budget(language: Language) {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let probe = in_language("probe", language);
    let plugin = probe_calling(&h, &probe, &api, json!({"http-calls": 5}));
    let call = json!({"url": api.url("/a")});
    let record = h
        .run(
            &plugin,
            "batches",
            json!([[call, call, call], [call, call, call]]),
        )
        .await;
    let answers = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    assert_eq!(statuses(&answers[0]), [Some(200), Some(200), Some(200)]);
    assert_eq!(statuses(&answers[1])[..2], [Some(200), Some(200)]);
    let refused = answers[1][2]["error"].as_str().unwrap_or_default();
    assert!(
        refused.contains("limit exceeded") && refused.contains("5 invoke-url calls"),
        "{refused}"
    );
    assert_eq!(api.journal.all().len(), 5, "the server saw only the budget");
    assert_eq!(record.calls.len(), 6, "the refused one is recorded too");

    // More requests in one batch than the whole budget: the execution ends,
    // and nothing was sent.
    let api = EchoServer::start().await;
    let plugin = probe_calling(&h, &probe, &api, json!({"http-calls": 5}));
    let call = json!({"url": api.url("/a")});
    let record = h.run(&plugin, "batches", json!([vec![call; 6]])).await;
    match &record.outcome {
        junction_host::runtime::Outcome::Failed { failure, message } => {
            assert_eq!(*failure, Failure::LimitExceeded);
            assert!(
                message.contains("send-many was given 6 requests")
                    && message.contains("limit of 5"),
                "{message}"
            );
        }
        other => panic!("expected limit-exceeded, got {other:?}"),
    }
    assert!(api.journal.all().is_empty());
}

#[tokio::test]
async fn a_batch_holds_no_more_than_the_plugin_could_take() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    // 16 MiB of memory: a batch may hold half of it in answers; six bodies
    // of 3 MiB would be 18.
    let plugin = probe_calling(&h, "probe", &api, json!({"memory-mb": 16}));
    let call = json!({"url": api.url(&format!("/sized?bytes={}", 3 * 1024 * 1024))});
    let record = h.run(&plugin, "batches", json!([vec![call; 6]])).await;
    let answers = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    let answers = answers[0].as_array().expect("answers");
    let delivered = answers
        .iter()
        .filter(|a| a["bytes"] == 3 * 1024 * 1024)
        .count();
    let too_large = answers
        .iter()
        .filter(|a| a["error"].as_str().is_some_and(|e| e.contains("too large")))
        .count();
    assert_eq!((delivered, too_large), (2, 4), "{answers:?}");
    assert_eq!(api.journal.all().len(), 6);
}
