//! The sandbox holds whatever language a plugin is written in: the same
//! probe in Rust, Python (CPython inside the component) and JavaScript
//! (SpiderMonkey inside) tries to loop forever, allocate without end, read
//! files, the environment, sockets and name lookup, and get at a
//! connection's credentials, through the real runtime; the host's refusals
//! of a call arrive in each language as the same WIT error.

use std::time::Duration;

use junction_host::Language;
use junction_host::manifest::Manifest;
use junction_host::runtime::Failure;
use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, call_error, header_values, limits};
use junction_tests::plugins::in_language;
use serde_json::json;

const TOKEN: &str = "tok_LanguageProbeSecret_51f0c9";

/// Memory for a probe that should not run out: an interpreter's own heap
/// comes first.
const ROOMY_MB: u64 = 64;

fn probe(language: Language) -> String {
    in_language("probe", language)
}

async fn a_loop_stops_at_the_deadline_and_the_host_keeps_serving(language: Language) {
    let h = Harness::new().await;
    let package = probe(language);
    let looping = h.load(
        &package,
        "probe",
        &[],
        &[],
        &limits(Duration::from_millis(500), ROOMY_MB),
    );
    let record = h.run(&looping, "loop", json!({})).await;
    let (failure, message) = record.failure().expect("an endless loop must fail");
    assert_eq!(failure, Failure::Timeout, "{language}: {message}");
    assert!(message.contains("500 ms"), "{language}: {message}");
    // The same runtime runs the language's hello straight after.
    let hello_package = in_language("hello", language);
    let hello = h.load(&hello_package, "hello", &[], &[], &Manifest::default());
    let record = h.run(&hello, "hello", json!({"n": 1})).await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("{language}: {record:#?}"));
    assert_eq!(output["payload"], json!({"n": 1}), "{language}");
}

async fn allocation_past_the_cap_is_a_memory_limit(language: Language) {
    let h = Harness::new().await;
    let cap_mb = ROOMY_MB;
    let plugin = h.load(
        &probe(language),
        "probe",
        &[],
        &[],
        &limits(Duration::from_secs(20), cap_mb),
    );
    let record = h.run(&plugin, "alloc", json!({})).await;
    let (failure, message) = record.failure().expect("endless allocation must fail");
    assert_eq!(failure, Failure::MemoryLimit, "{language}: {message}");
    assert!(
        record.peak_memory_bytes <= cap_mb * 1024 * 1024,
        "{language}: peak {}",
        record.peak_memory_bytes
    );
    assert!(
        record.peak_memory_bytes > cap_mb * 1024 * 1024 / 2,
        "{language}: peak {}",
        record.peak_memory_bytes
    );
    // The instance that ran out is gone; the next run starts afresh.
    let record = h.run(&plugin, "fail", json!({})).await;
    assert_eq!(
        record.failure(),
        Some((Failure::PluginError, "probe was asked to fail")),
        "{language}"
    );
}

async fn no_files_env_args_sockets_or_name_lookup(language: Language) {
    let h = Harness::new().await;
    let target = EchoServer::start().await;
    let plugin = h.load(
        &probe(language),
        "probe",
        &[],
        &[],
        &limits(Duration::from_secs(10), ROOMY_MB),
    );
    let record = h
        .run(&plugin, "escape", json!({"addr": target.addr.to_string()}))
        .await;
    let report = record
        .output()
        .unwrap_or_else(|| panic!("{language}: probe failed: {record:#?}"));
    assert_eq!(report["file_ok"], false, "{language}: {report}");
    assert_eq!(report["dir_ok"], false, "{language}: {report}");
    assert_eq!(report["env"], 0, "{language}: {report}");
    assert_eq!(report["args"], 0, "{language}: {report}");
    assert_eq!(report["socket_ok"], false, "{language}: {report}");
    assert_eq!(report["lookup_ok"], false, "{language}: {report}");
    if language == Language::JavaScript {
        // Its way out is `fetch`: the engine has nothing to send with, and
        // the execution stops there.
        let record = h
            .run(&plugin, "fetch", json!({"addr": target.addr.to_string()}))
            .await;
        let (failure, message) = record
            .failure()
            .unwrap_or_else(|| panic!("fetch must not work: {record:#?}"));
        assert_eq!(failure, Failure::Trap, "{message}");
    }
    // Anything the attempts left behind had time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        target.journal.all().is_empty(),
        "{language}: the socket reached the server"
    );
}

async fn credentials_never_reach_the_plugin(language: Language) {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let elsewhere = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), TOKEN).await;
    let plugin = h.load(
        &probe(language),
        "probe",
        &["crm"],
        &[],
        &limits(Duration::from_secs(10), ROOMY_MB),
    );

    // A careless API echoes the credentials back: the plugin sees them
    // replaced, and the record holds none.
    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": "/mirror", "connection": "crm"}),
        )
        .await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("{language}: {record:#?}"));
    assert_eq!(output["status"], 200, "{language}: {output}");
    let seen = output.to_string();
    assert!(!seen.contains(TOKEN), "{language}: the plugin saw {seen}");
    assert!(seen.contains("[REDACTED]"), "{language}: {seen}");
    // Each SDK splits the host's header block back into pairs.
    let has = |name: &str, value: &str| header_values(output, name).contains(&value);
    assert!(
        has("content-type", "application/json"),
        "{language}: {output}"
    );
    assert!(
        has("x-seen-authorization", "[REDACTED]"),
        "{language}: {output}"
    );
    assert!(
        header_values(output, "set-cookie").is_empty(),
        "{language}: {output}"
    );
    let stored = serde_json::to_string(&record).expect("record");
    assert!(
        !stored.contains(TOKEN),
        "{language}: the record leaks: {stored}"
    );
    assert!(
        api.journal
            .all()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "{language}: the API received the credentials"
    );

    // The connection's credentials to another host: refused, nothing sent.
    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": elsewhere.url("/steal"), "connection": "crm"}),
        )
        .await;
    let error = call_error(&record);
    assert!(
        error.contains("forbidden") && error.contains("only sent to"),
        "{language}: {error}"
    );
    // Its own Authorization header on the connection's request: refused.
    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": "/x", "connection": "crm", "headers": [["Authorization", "Bearer mine"]]}),
        )
        .await;
    let error = call_error(&record);
    assert!(
        error.contains("forbidden") && error.contains("may not be set"),
        "{language}: {error}"
    );
    // Without a connection, a host the plugin was not allowed.
    let record = h
        .run(&plugin, "call", json!({"url": elsewhere.url("/plain")}))
        .await;
    let error = call_error(&record);
    assert!(error.contains("may not call"), "{language}: {error}");
    assert!(
        elsewhere.journal.all().is_empty(),
        "{language}: another host received a request"
    );

    // Lookup shows the granted connection and never its token.
    let record = h.run(&plugin, "connections", json!({})).await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("{language}: {record:#?}"));
    assert_eq!(output["all"][0]["link_name"], "crm", "{language}");
    assert_eq!(output["all"][0]["auth_type"], "bearer", "{language}");
    assert_eq!(output["not_granted_hidden"], true, "{language}");
    assert!(!output.to_string().contains(TOKEN), "{language}");
}

async fn http_errors_read_the_same_in_every_language(language: Language) {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let manifest = Manifest::from_json(&format!(
        r#"{{"limits": {{"http-calls": 2, "timeout-ms": 5000, "memory-mb": {ROOMY_MB}}}}}"#
    ))
    .expect("manifest");
    let plugin = h.load(&probe(language), "probe", &[], &[api.origin()], &manifest);
    let call = json!({"url": api.url("/a")});
    let record = h.run(&plugin, "calls", json!([call, call, call])).await;
    let results = record
        .output()
        .unwrap_or_else(|| panic!("{language}: {record:#?}"));
    assert_eq!(results[0]["status"], 200, "{language}: {results}");
    assert_eq!(results[1]["status"], 200, "{language}: {results}");
    assert_eq!(
        api.journal.all().len(),
        2,
        "{language}: the third was not sent"
    );
    let expectations = [
        (
            results[2].clone(),
            "invoke-url: limit exceeded: ",
            "limit-exceeded",
        ),
        (
            h.run(
                &plugin,
                "call",
                json!({"url": api.url("/slow"), "timeout_ms": 200}),
            )
            .await
            .output()
            .cloned()
            .unwrap_or_default(),
            "invoke-url: the request timed out",
            "timeout",
        ),
        (
            h.run(&plugin, "call", json!({"url": api.url("/huge")}))
                .await
                .output()
                .cloned()
                .unwrap_or_default(),
            "invoke-url: the response body is too large",
            "too-large",
        ),
        (
            h.run(&plugin, "call", json!({"url": "ftp://x/y"}))
                .await
                .output()
                .cloned()
                .unwrap_or_default(),
            "invoke-url: invalid request: ",
            "invalid-request",
        ),
        (
            h.run(&plugin, "call", json!({"url": "/x", "connection": "ghost"}))
                .await
                .output()
                .cloned()
                .unwrap_or_default(),
            "invoke-url: unknown connection: ",
            "unknown-connection",
        ),
    ];
    for (result, message, case) in expectations {
        let error = result["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(message),
            "{language}: expected `{message}…`, got {result}"
        );
        // Python and JavaScript name the WIT case; Rust's is the enum variant.
        if language != Language::Rust {
            assert_eq!(result["case"], case, "{language}: {result}");
        }
    }
}

async fn kv_is_private_and_bounded(language: Language) {
    let h = Harness::new().await;
    let roomy = limits(Duration::from_secs(10), ROOMY_MB);
    let package = probe(language);
    let first = h.load(&package, "probe", &[], &[], &roomy);
    let other = h.load(&package, "other-plugin", &[], &[], &roomy);
    for expected in 1..=2 {
        let record = h.run(&first, "kv", json!({})).await;
        let output = record
            .output()
            .unwrap_or_else(|| panic!("{language}: {record:#?}"));
        assert_eq!(output["count"], expected, "{language}");
        assert_eq!(output["big_refused"], true, "{language}");
    }
    let record = h.run(&other, "kv", json!({})).await;
    let output = record
        .output()
        .unwrap_or_else(|| panic!("{language}: {record:#?}"));
    assert_eq!(output["count"], 1, "{language}");
    assert_eq!(output["keys"], json!(["count"]), "{language}");
}

junction_tests::each_language!(
    a_loop_stops_at_the_deadline_and_the_host_keeps_serving,
    allocation_past_the_cap_is_a_memory_limit,
    no_files_env_args_sockets_or_name_lookup,
    credentials_never_reach_the_plugin,
    http_errors_read_the_same_in_every_language,
    kv_is_private_and_bounded,
);
