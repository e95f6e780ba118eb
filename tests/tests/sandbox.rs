//! The sandbox's edges, each probed by a small plugin through the real
//! runtime: deadlines, the memory cap, no files/env/sockets, connection
//! grants, where credentials may go, guest credential headers, budgets,
//! captured output, and secrets at rest.

use std::time::Duration;

use junction_host::manifest::Manifest;
use junction_host::runtime::{Failure, LoadError};
use junction_host::store::{AuthType, Credentials, Placement, Secret};
use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, bearer, call_error, limits};
use junction_tests::plugins;
use serde_json::json;

const TOKEN: &str = "tok_SuperSecretValue_8c1d2e";

#[tokio::test]
async fn infinite_loop_stops_at_the_deadline_and_the_host_keeps_serving() {
    let h = Harness::new().await;
    let looping = h.load(
        "probe",
        "probe",
        &[],
        &[],
        &limits(Duration::from_millis(300), 32),
    );
    let record = h.run(&looping, "loop", json!({})).await;
    let (failure, message) = record.failure().expect("must fail");
    assert_eq!(failure, Failure::Timeout, "{message}");
    assert!(message.contains("300 ms"), "{message}");
    // The next execution on the same runtime is unaffected.
    let hello = h.load_simple("hello", &[]);
    let record = h.run(&hello, "hello", json!({"n": 1})).await;
    assert!(record.is_ok(), "{record:#?}");
}

#[tokio::test]
async fn allocation_past_the_cap_is_a_memory_limit() {
    let h = Harness::new().await;
    let plugin = h.load(
        "probe",
        "probe",
        &[],
        &[],
        &limits(Duration::from_secs(10), 16),
    );
    let record = h.run(&plugin, "alloc", json!({})).await;
    let (failure, message) = record.failure().expect("must fail");
    assert_eq!(failure, Failure::MemoryLimit, "{message}");
    assert!(record.peak_memory_bytes <= 16 * 1024 * 1024);
    assert!(
        record.peak_memory_bytes > 8 * 1024 * 1024,
        "peak {}",
        record.peak_memory_bytes
    );
}

#[tokio::test]
async fn no_files_env_args_sockets_or_name_lookup() {
    let h = Harness::new().await;
    let target = EchoServer::start().await;
    let plugin = h.load_simple("probe", &[]);
    let record = h
        .run(&plugin, "escape", json!({"addr": target.addr.to_string()}))
        .await;
    let report = record
        .output()
        .unwrap_or_else(|| panic!("probe failed: {record:#?}"));
    assert_eq!(report["file_ok"], false, "{report}");
    assert_eq!(report["dir_ok"], false, "{report}");
    assert_eq!(report["env"], 0, "{report}");
    assert_eq!(report["args"], 0, "{report}");
    assert_eq!(report["socket_ok"], false, "{report}");
    assert_eq!(report["lookup_ok"], false, "{report}");
    assert!(
        target.journal.all().is_empty(),
        "the socket reached the server"
    );
}

#[tokio::test]
async fn connections_must_exist_and_be_granted() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), TOKEN).await;
    // Granted `ghost`, which does not exist; not granted `crm`, which does.
    let plugin = h.load_simple("probe", &["ghost"]);
    let record = h
        .run(&plugin, "call", json!({"url": "/x", "connection": "crm"}))
        .await;
    let error = call_error(&record);
    assert!(
        error.contains("unknown connection") && error.contains("not granted"),
        "{error}"
    );
    let record = h
        .run(&plugin, "call", json!({"url": "/x", "connection": "ghost"}))
        .await;
    let error = call_error(&record);
    assert!(
        error.contains("unknown connection")
            && error.contains("no connection has link name `ghost`"),
        "{error}"
    );
    assert!(api.journal.all().is_empty());

    // Lookup shows only granted connections, and never the token.
    let plugin = h.load_simple("probe", &["crm"]);
    let record = h.run(&plugin, "connections", json!({})).await;
    let output = record.output().expect("ok");
    assert_eq!(output["all"][0]["link_name"], "crm");
    assert_eq!(output["all"][0]["auth_type"], "bearer");
    assert_eq!(output["all"][0]["base_url"], api.origin().as_str());
    assert_eq!(output["not_granted_hidden"], true);
    assert!(!output.to_string().contains(TOKEN));
}

#[tokio::test]
async fn credentials_go_only_to_the_services_hosts() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let elsewhere = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), TOKEN).await;
    let plugin = h.load_simple("probe", &["crm"]);

    let record = h
        .run(&plugin, "call", json!({"url": "/ok", "connection": "crm"}))
        .await;
    let output = record.output().expect("ok");
    assert_eq!(output["status"], 200);
    assert_eq!(
        api.journal.all()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // An absolute URL on another host with the connection: refused, nothing sent.
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
        "{error}"
    );
    // A redirect from the service's host to another host: refused before following.
    let to = elsewhere.url("/steal");
    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": "/redirect", "connection": "crm", "query": [["to", to]]}),
        )
        .await;
    let error = call_error(&record);
    assert!(error.contains("redirect refused"), "{error}");
    assert!(
        elsewhere.journal.all().is_empty(),
        "another host received a request"
    );

    // Without a connection, only the plugin's allowed hosts can be reached.
    let record = h
        .run(&plugin, "call", json!({"url": elsewhere.url("/plain")}))
        .await;
    let error = call_error(&record);
    assert!(
        error.contains("may not call") && error.contains("allowed-hosts"),
        "{error}"
    );
    assert!(elsewhere.journal.all().is_empty());
    let open = h.load(
        "probe",
        "open",
        &[],
        &[elsewhere.origin()],
        &Manifest::default(),
    );
    let record = h
        .run(&open, "call", json!({"url": elsewhere.url("/plain")}))
        .await;
    let output = record.output().expect("ok");
    assert_eq!(output["status"], 200);
    assert_eq!(elsewhere.journal.all()[0].header("authorization"), None);
}

#[tokio::test]
async fn guest_credential_headers_are_refused_on_connection_requests() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), TOKEN).await;
    let plugin = h.load_simple("probe", &["crm"]);
    for header in ["Authorization", "proxy-authorization", "Cookie"] {
        let record = h
            .run(
                &plugin,
                "call",
                json!({"url": "/x", "connection": "crm", "headers": [[header, "Bearer mine"]]}),
            )
            .await;
        let error = call_error(&record);
        assert!(
            error.contains("forbidden") && error.contains("may not be set"),
            "{header}: {error}"
        );
    }
    assert!(api.journal.all().is_empty());
}

#[tokio::test]
async fn query_credentials_are_redacted_in_the_record() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    h.add_query_key("hub", &api.origin(), "hapikey", TOKEN)
        .await;
    let plugin = h.load_simple("probe", &["hub"]);
    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": "/contacts", "connection": "hub", "query": [["limit", "5"]]}),
        )
        .await;
    assert_eq!(record.output().expect("ok")["status"], 200);
    assert_eq!(api.journal.all()[0].query_value("hapikey"), Some(TOKEN));
    let text = serde_json::to_string(&record).expect("json");
    assert!(!text.contains(TOKEN), "the record leaks the key: {text}");
    assert!(
        record.calls[0].url.contains("hapikey=REDACTED") && record.calls[0].url.contains("limit=5")
    );
}

#[tokio::test]
async fn http_budget_timeouts_and_size_limits() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let manifest = Manifest::from_json(r#"{"limits": {"http-calls": 2, "timeout-ms": 3000}}"#)
        .expect("manifest");
    let plugin = h.load("probe", "probe", &[], &[api.origin()], &manifest);
    let call = json!({"url": api.url("/a")});
    let record = h.run(&plugin, "calls", json!([call, call, call])).await;
    let results = record.output().expect("ok");
    assert_eq!(results[0]["status"], 200);
    assert_eq!(results[1]["status"], 200);
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("limit exceeded"),
        "{results}"
    );
    assert_eq!(api.journal.all().len(), 2);

    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": api.url("/slow"), "timeout_ms": 200}),
        )
        .await;
    assert_eq!(call_error(&record), "invoke-url: the request timed out");
    let record = h
        .run(&plugin, "call", json!({"url": api.url("/huge")}))
        .await;
    assert_eq!(
        call_error(&record),
        "invoke-url: the response body is too large"
    );
    let record = h.run(&plugin, "call", json!({"url": "ftp://x/y"})).await;
    assert!(call_error(&record).contains("only http and https"));
}

/// A call without a limit of its own has the execution's: the host sets no
/// timer of its own for it, so the execution's deadline must still cut it
/// (the server would answer only after 5 s), alone and in a batch.
#[tokio::test]
async fn the_execution_deadline_cuts_a_call_without_its_own_limit() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let manifest = Manifest::from_json(r#"{"limits": {"timeout-ms": 400}}"#).expect("manifest");
    let plugin = h.load("probe", "probe", &[], &[api.origin()], &manifest);
    let slow = json!({"url": api.url("/slow")});
    for (kind, payload) in [
        ("call", slow.clone()),
        ("batches", json!([[slow.clone(), slow]])),
    ] {
        let record = h.run(&plugin, kind, payload).await;
        let (failure, message) = record.failure().expect("fails");
        assert_eq!(failure, Failure::Timeout, "{kind}: {message}");
        assert!(message.contains("400 ms"), "{kind}: {message}");
        assert!(
            record.wall_time_ms < 4000.0,
            "{kind}: the call outlived the deadline: {} ms",
            record.wall_time_ms
        );
    }
}

#[tokio::test]
async fn output_logs_traps_and_errors_are_classified() {
    let h = Harness::new().await;
    let plugin = h.load_simple("probe", &[]);
    let record = h.run(&plugin, "print", json!({})).await;
    assert!(record.is_ok(), "{record:#?}");
    assert!(record.logs_truncated);
    let logged: usize = record.logs.iter().map(|l| l.message.len()).sum();
    assert!(logged <= 64 * 1024);
    assert!(
        record
            .logs
            .iter()
            .all(|l| l.level == "stdout" || l.level == "stderr")
    );

    let record = h.run(&plugin, "panic", json!({})).await;
    let (failure, message) = record.failure().expect("fails");
    assert_eq!(failure, Failure::Trap);
    assert!(
        record
            .logs
            .iter()
            .any(|l| l.level == "stderr" && l.message.contains("probe was asked to panic")),
        "{message} {:?}",
        record.logs
    );

    let record = h.run(&plugin, "fail", json!({})).await;
    assert_eq!(
        record.failure(),
        Some((Failure::PluginError, "probe was asked to fail"))
    );

    let record = h.run(&plugin, "big-output", json!({})).await;
    assert_eq!(record.failure().map(|f| f.0), Some(Failure::LimitExceeded));

    let big = "z".repeat(1024 * 1024 + 1);
    let record = h.run(&plugin, "fail", json!({ "big": big })).await;
    assert_eq!(record.failure().map(|f| f.0), Some(Failure::LimitExceeded));
}

#[tokio::test]
async fn kv_persists_between_runs_and_is_private() {
    let h = Harness::new().await;
    let first = h.load_simple("probe", &[]);
    let other = h.load("probe", "other-plugin", &[], &[], &Manifest::default());
    for expected in 1..=3 {
        let record = h.run(&first, "kv", json!({})).await;
        let output = record.output().unwrap_or_else(|| panic!("{record:#?}"));
        assert_eq!(output["count"], expected);
        assert_eq!(output["big_refused"], true);
    }
    let record = h.run(&other, "kv", json!({})).await;
    assert_eq!(record.output().expect("ok")["count"], 1);
    assert_eq!(record.output().expect("ok")["keys"], json!(["count"]));
}

#[tokio::test]
async fn no_plaintext_secret_in_the_redb_file() {
    let dir;
    {
        let h = Harness::new().await;
        h.add_bearer("crm", "http://127.0.0.1:9", TOKEN).await;
        h.add_connection(
            "basic_one",
            "http://127.0.0.1:9",
            AuthType::Basic,
            Placement::Basic { username: None },
            Credentials::Basic {
                username: "ada".into(),
                password: Secret::new("pw_Hunter2_secret".into()),
            },
            &[],
        )
        .await;
        let back = h
            .store()
            .connection(None, "crm")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(back.credentials, bearer(TOKEN));
        dir = h.dir;
    }
    let bytes =
        std::fs::read(dir.path().join(junction_host::store::DB_FILE)).expect("read redb file");
    for secret in [TOKEN, "pw_Hunter2_secret"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` is in the redb file in plain text"
        );
    }
    assert!(
        bytes.windows(3).any(|w| w == b"ada"),
        "non-secret fields stay readable"
    );
}

#[tokio::test]
async fn bad_components_are_refused_with_clear_errors() {
    let h = Harness::new().await;
    let err = h.runtime.compile(b"hello, not wasm").expect_err("refused");
    assert!(matches!(err, LoadError::NotWasm));
    let core_module = b"\0asm\x01\0\0\0";
    let err = h.runtime.compile(core_module).expect_err("refused");
    assert!(matches!(err, LoadError::CoreModule), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"));
    let mut truncated = plugins::component_bytes("hello");
    truncated.truncate(truncated.len() / 2);
    let err = h.runtime.compile(&truncated).expect_err("refused");
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
    let err = h
        .runtime
        .compile(&plugins::component_bytes("wrong-world"))
        .expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, LoadError::WrongWorld(_)), "{text}");
    assert!(text.contains("other:thing/telemetry@1.0.0"), "{text}");
    assert!(
        text.contains("missing export `handle`") && text.contains("`run`"),
        "{text}"
    );

    // The runtime still works.
    let hello = h.load_simple("hello", &[]);
    assert!(h.run(&hello, "hello", json!({})).await.is_ok());
}

#[tokio::test]
async fn without_pooling_the_same_plugin_runs() {
    let h = Harness::with_config(junction_host::runtime::RuntimeConfig {
        pooling: false,
        network: junction_host::netguard::NetworkPolicy {
            allow_private: true,
        },
        ..Default::default()
    })
    .await;
    assert!(!h.runtime.is_pooling());
    let hello = h.load_simple("hello", &[]);
    let record = h.run(&hello, "hello", json!({"x": 1})).await;
    assert_eq!(record.output().expect("ok")["payload"], json!({"x": 1}));
}

#[tokio::test]
async fn internal_addresses_are_refused_unless_the_operator_allows_them() {
    let api = junction_tests::echo::EchoServer::start().await;
    let strict = Harness::with_config(junction_host::runtime::RuntimeConfig {
        max_instances: 4,
        ..Default::default()
    })
    .await;
    // The plugin may call the echo server by its allowed hosts, but the
    // address is loopback, which the default policy refuses.
    let allowed = [api.origin(), "http://169.254.169.254".to_owned()];
    let manifest = junction_host::manifest::Manifest::default();
    let probe = strict.load("probe", "probe", &[], &allowed, &manifest);
    let record = strict
        .run(
            &probe,
            "call",
            json!({"url": format!("{}/a", api.origin())}),
        )
        .await;
    let error = call_error(&record);
    assert!(error.contains("loopback"), "{error}");
    let record = strict
        .run(
            &probe,
            "call",
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
        )
        .await;
    assert!(call_error(&record).contains("metadata"), "{record:?}");

    // Allowed: loopback works, metadata addresses still do not.
    let open = Harness::new().await;
    let probe = open.load("probe", "probe", &[], &allowed, &manifest);
    let record = open
        .run(
            &probe,
            "call",
            json!({"url": format!("{}/a", api.origin())}),
        )
        .await;
    assert_eq!(record.output().expect("ok")["status"], 200, "{record:?}");
    let record = open
        .run(
            &probe,
            "call",
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
        )
        .await;
    assert!(call_error(&record).contains("metadata"), "{record:?}");
}
