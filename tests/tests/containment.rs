//! What a hostile plugin gets back and keeps: responses without cookies
//! and with every form of the attached credential replaced, a kv quota that
//! refuses in words, and base URLs that captured metadata cannot redirect.

use junction_host::manifest::Manifest;
use junction_host::store::{AuthType, Credentials, Placement, Secret};
use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, bearer, call_error};
use serde_json::json;

const TOKEN: &str = "tok_EchoedBack_5d8f2a91";
const KEY: &str = "key_InTheQuery_77c3e0";
const PASSWORD: &str = "pw_Basic_0a9b8c7d";

fn assert_clean(what: &str, text: &str) {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("junction:{PASSWORD}"));
    for secret in [TOKEN, KEY, PASSWORD, basic.as_str(), "s3ss10n-c00kie"] {
        assert!(!text.contains(secret), "{what} holds `{secret}`: {text}");
    }
}

#[tokio::test]
async fn responses_reach_the_plugin_without_cookies_or_the_credential() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    h.add_bearer("crm", &api.origin(), TOKEN).await;
    h.add_query_key("keyed", &api.origin(), "api_key", KEY)
        .await;
    h.add_connection(
        "basic",
        &api.origin(),
        AuthType::ApiKey,
        Placement::Basic { username: None },
        Credentials::ApiKey {
            key: Secret::new(PASSWORD.to_owned()),
        },
        &[],
    )
    .await;
    let plugin = h.load_simple("probe", &["crm", "keyed", "basic"]);
    for link in ["crm", "keyed", "basic"] {
        let record = h
            .run(
                &plugin,
                "call",
                json!({"url": "/mirror?echo=1", "connection": link}),
            )
            .await;
        let output = record
            .output()
            .unwrap_or_else(|| panic!("{link}: {record:#?}"));
        assert_eq!(output["status"], 200, "{link}: {output}");
        let seen = output.to_string();
        assert_clean(&format!("what `{link}`'s plugin saw"), &seen);
        assert!(seen.contains("[REDACTED]"), "{link}: {seen}");
        let headers = output["headers"].as_array().expect("headers");
        assert!(
            headers.iter().all(|h| h[0] != "set-cookie"),
            "{link}: set-cookie reached the plugin: {output}"
        );
        assert!(
            record.calls[0].redactions >= 1,
            "{link}: the call record counts the replacements: {:?}",
            record.calls[0]
        );
        // The plugin printed what it got; the record holds no credential.
        let stored = serde_json::to_string(&record).expect("record");
        assert_clean(&format!("`{link}`'s execution record"), &stored);
    }
    // The API really received the credentials: the scrub is on the way back.
    let received: Vec<String> = api.journal.all().iter().map(|r| format!("{r:?}")).collect();
    assert!(received.iter().any(|r| r.contains(TOKEN)));
    assert!(received.iter().any(|r| r.contains(KEY)));
}

#[tokio::test]
async fn kv_has_a_quota_that_refuses_in_words() {
    let h = Harness::new().await;
    let manifest =
        Manifest::from_json(r#"{"limits": {"kv-mb": 1, "kv-keys": 50}}"#).expect("manifest");
    let plugin = h.load("probe", "probe", &[], &[], &manifest);
    let record = h
        .run(&plugin, "kv-flood", json!({"n": 100, "kib": 300}))
        .await;
    let output = record.output().unwrap_or_else(|| panic!("{record:#?}"));
    assert_eq!(output["stored"], 3, "{output}");
    let error = output["error"].as_str().expect("an error");
    assert!(
        error.contains("kv quota") && error.contains("1048576 bytes"),
        "{error}"
    );
    let usage = h.store().kv_usage("probe").await.expect("usage");
    assert!(usage.bytes <= 1024 * 1024, "{usage:?}");
    // Keys are counted too.
    let record = h
        .run(&plugin, "kv-flood", json!({"n": 100, "kib": 0}))
        .await;
    let output = record.output().expect("ok");
    // flood/0..2 are replaced, flood/3..49 are new: 50 keys, the cap.
    assert_eq!(output["stored"], 50, "{output}");
    assert!(
        output["error"].as_str().unwrap_or("").contains("50 keys"),
        "{output}"
    );
    // A manifest may not ask for more than the operator's ceiling.
    let greedy = Manifest::from_json(r#"{"limits": {"kv-mb": 999999}}"#).expect("manifest");
    let err = greedy
        .resolve_limits(
            &junction_host::runtime::Limits::default(),
            &junction_host::runtime::RuntimeConfig::default().ceiling,
        )
        .unwrap_err();
    assert!(err.contains("limits.kv-mb"), "{err}");
}

#[tokio::test]
async fn captured_metadata_cannot_move_where_credentials_go() {
    let h = Harness::new().await;
    let api = EchoServer::start().await;
    let elsewhere = EchoServer::start().await;
    let add = async |link: &str, template: &str, value: &str, allowed: &[String]| {
        let store = h.store();
        store
            .create_service(
                &junction_host::store::Service {
                    name: format!("{link}-svc"),
                    auth_type: AuthType::Bearer,
                    base_url: Some(template.to_owned()),
                    allowed_hosts: allowed.to_vec(),
                    placement: Placement::bearer(),
                    oauth: None,
                    has_client_secret: false,
                    problem: None,
                    created_at_ms: junction_host::store::now_ms(),
                },
                None,
            )
            .await
            .expect("service");
        store
            .create_connection(&junction_host::store::Connection {
                link_name: link.to_owned(),
                end_user: None,
                service: format!("{link}-svc"),
                status: junction_host::store::ConnectionStatus::Connected,
                scopes: vec![],
                metadata: [("api_domain".to_owned(), value.to_owned())]
                    .into_iter()
                    .collect(),
                credentials: bearer(TOKEN),
                last_error: None,
                created_at_ms: 0,
                updated_at_ms: 0,
                last_refresh_ms: None,
                history: Vec::new(),
            })
            .await
            .expect("connection");
    };
    let allowed = vec![api.origin()];
    add("good", "{api_domain}/crm/v7", &api.origin(), &allowed).await;
    add(
        "moved",
        "{api_domain}/crm/v7",
        &elsewhere.origin(),
        &allowed,
    )
    .await;
    add(
        "pathy",
        "{api_domain}/crm/v7",
        &format!("{}/evil?", api.origin()),
        &allowed,
    )
    .await;
    add(
        "label",
        "http://{api_domain}/v1",
        "127.0.0.1@evil.example",
        &[],
    )
    .await;
    let plugin = h.load_simple("probe", &["good", "moved", "pathy", "label"]);

    let record = h
        .run(
            &plugin,
            "call",
            json!({"url": "/Leads", "connection": "good"}),
        )
        .await;
    assert_eq!(record.output().expect("ok")["status"], 200, "{record:#?}");
    assert_eq!(api.journal.all()[0].path, "/crm/v7/Leads");

    for (link, expected) in [
        ("moved", "not among the allowed hosts"),
        ("pathy", "cannot go into the base URL"),
        ("label", "which a host name cannot"),
    ] {
        let record = h
            .run(
                &plugin,
                "call",
                json!({"url": "/Leads", "connection": link}),
            )
            .await;
        let error = call_error(&record);
        assert!(error.contains(expected), "{link}: {error}");
    }
    assert!(
        elsewhere.journal.all().is_empty(),
        "no credential went elsewhere"
    );
    assert_eq!(api.journal.all().len(), 1);
}
