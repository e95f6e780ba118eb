//! What was made before today's build keeps working with it.
//!
//! A data directory written before the host was split into crates (by the
//! `junction` binary of commit 36107d8, checked in under
//! `tests/fixtures/data-dir-36107d8`) opens and serves with today's build:
//! its plugin loads, its connection's sealed secret opens with its key, its
//! execution records and events are read, and new work is added.
//!
//! A plugin built against the 0.1.0 contract (`tests/plugins/contract-0-1-0`,
//! from a frozen copy of that WIT) runs on the 0.1.1 host: `invoke-url` and
//! `invoke-many` answer with header pairs, scrubbed as before.
//!
//! The fixture was made with that binary: `serve`, `deploy plugins/hello`,
//! `connection add demo --service demo-api --auth bearer` (secret below),
//! `invoke hello` with `{"name": "fixture"}`, `event send hello` with
//! idempotency key `fixture-1`, then a graceful stop.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use junction_host::store::{Credentials, Store};
use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, header_values};
use junction_tests::host::TestHost;
use reqwest::StatusCode;
use serde_json::json;

const FIXTURE: &str = "fixtures/data-dir-36107d8";
const SECRET: &str = "tok_fixture_9f8e7d6c5b4a";
const INVOKED: &str = "01a23547648de4f1a1cddf0381f6178d";
const DELIVERED: &str = "01a2354770020da868611da29744c936";

/// A private copy of the fixture, with the modes the host gave its files.
fn copy_fixture() -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["junction.redb", "master.key", "admin-token"] {
        let to = dir.path().join(name);
        std::fs::copy(from.join(name), &to).expect("copy the fixture");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_from_before_the_crate_split_opens_and_serves() {
    let mut host = TestHost::start_in(copy_fixture()).await;

    let report = host.server().load_report();
    // From its artifact, or compiled again where the CPU differs from the
    // one that wrote it.
    assert_eq!(report.failed, 0, "the stored plugin loads");
    let plugins = host.get("/v1/plugins").await;
    assert_eq!(plugins.status, StatusCode::OK, "{}", plugins.text);
    assert_eq!(plugins.json[0]["name"], "hello", "{}", plugins.text);
    assert_eq!(plugins.json[0]["active_version"], 1, "{}", plugins.text);

    let connection = host.get("/v1/connections/demo").await;
    assert_eq!(connection.status, StatusCode::OK, "{}", connection.text);
    assert_eq!(connection.json["service"], "demo-api");
    assert_eq!(connection.json["status"], "connected");
    assert!(!connection.text.contains(SECRET), "{}", connection.text);

    let history = host.get("/v1/executions?plugin=hello").await;
    let ids: Vec<&str> = history
        .json
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|record| record["id"].as_str())
        .collect();
    assert_eq!(ids, [DELIVERED, INVOKED], "{}", history.text);
    let old = host.get(&format!("/v1/executions/{INVOKED}")).await;
    assert_eq!(old.json["status"], "ok", "{}", old.text);
    assert_eq!(old.json["output"]["payload"]["name"], "fixture");

    // The event sent then is read back with its idempotency key and its
    // delivery. (Whether the key still deduplicates depends only on the
    // 24-hour window, which for a checked-in fixture is long past.)
    let delivered = host.get(&format!("/v1/executions/{DELIVERED}")).await;
    let event_id = delivered.json["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the delivery's record names its event: {}", delivered.text));
    let event = host.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.text);
    assert_eq!(event.json["idempotency_key"], "fixture-1", "{}", event.text);
    assert_eq!(
        event.json["deliveries"][0]["state"], "succeeded",
        "{}",
        event.text
    );
    let resent = host
        .post(
            "/v1/events",
            &json!({ "kind": "hello", "payload": { "n": 1 }, "idempotency_key": "fixture-1" }),
        )
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);

    let run = host
        .invoke("hello", "hello", json!({"name": "today"}))
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "today");

    // The secret sealed by the old build opens with the fixture's key.
    host.stop().await;
    let store = Store::open(host.dir.path()).await.expect("the store opens");
    let demo = store
        .connection(None, "demo")
        .await
        .expect("read")
        .expect("exists");
    match demo.credentials {
        Credentials::Bearer { token } => assert_eq!(token.expose(), SECRET),
        other => panic!("bearer credentials expected, got {other:?}"),
    }
}

/// The credential the 0.1.0 plugin's connection attaches; its API echoes it.
const CONTRACT_TOKEN: &str = "tok_Contract010_4e2d9b";

#[tokio::test]
async fn a_plugin_of_the_0_1_0_contract_runs_on_the_0_1_1_host() {
    let h = Harness::new().await;
    let (component, _) = h.compiled("contract-0-1-0");
    let imports: Vec<String> = component
        .component_type()
        .imports(h.runtime.engine())
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(
        imports
            .iter()
            .any(|name| name == "junction:plugin/http@0.1.0"),
        "the fixture plugin must import the 0.1.0 contract: {imports:?}"
    );

    let api = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), CONTRACT_TOKEN).await;
    let plugin = h.load_simple("contract-0-1-0", &["crm"]);
    let mirror = json!({"url": "/mirror", "connection": "crm"});
    let record = h.run(&plugin, "one", mirror.clone()).await;
    let output = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(
        header_values(output, "content-type"),
        ["application/json"],
        "{output}"
    );
    // The whole header value the host attached is one form of the credential.
    assert_eq!(
        header_values(output, "x-seen-authorization"),
        ["[REDACTED]"],
        "{output}"
    );
    assert!(header_values(output, "set-cookie").is_empty(), "{output}");
    assert!(!output.to_string().contains(CONTRACT_TOKEN), "{output}");
    // The request was lifted from the 0.1.0 layout whole.
    let mirrored: serde_json::Value =
        serde_json::from_str(output["body"].as_str().expect("body")).expect("mirrored request");
    assert!(
        mirrored["headers"]
            .as_array()
            .expect("mirrored headers")
            .iter()
            .any(|pair| pair[0] == "x-contract" && pair[1] == "0.1.0"),
        "{mirrored}"
    );
    assert_eq!(mirrored["query"], json!([["from", "0.1.0"]]), "{mirrored}");
    assert!(
        record
            .logs
            .iter()
            .any(|line| line.message == "0.1.0 plugin handling one"),
        "{:?}",
        record.logs
    );

    let record = h.run(&plugin, "many", mirror).await;
    let output = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    let answers = output.as_array().expect("two answers");
    assert_eq!(answers.len(), 2, "{output}");
    for answer in answers {
        assert_eq!(answer["status"], 200, "{output}");
        assert!(
            answer["headers"].as_array().is_some_and(|h| !h.is_empty()),
            "{output}"
        );
    }
    assert!(!output.to_string().contains(CONTRACT_TOKEN), "{output}");
    assert_eq!(api.journal.all().len(), 3);
}
