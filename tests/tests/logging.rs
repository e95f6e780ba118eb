//! The host's own log — runtime and server — never carries a secret. Alone in its test binary:
//! tracing caches per-callsite interest process-wide, so a scoped subscriber
//! is only reliable when no other test runs beside it.

use junction_tests::echo::EchoServer;
use junction_tests::harness::{Harness, call_error};
use junction_tests::host::TestHost;
use junction_tests::oauth::{CLIENT_SECRET, FakeProvider, service_json};
use junction_tests::plugins::component_bytes;
use serde_json::json;

const TOKEN: &str = "tok_SuperSecretValue_8c1d2e";
const SERVER_SECRET: &str = "srv_key_SecretValue_5b7a90";
const HOOK_SECRET: &str = "whs_hook_SecretValue_77e3a1";

/// Collects everything the host logs at debug level on this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_stay_out_of_the_host_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Global: the server logs from worker and blocking threads too.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let h = Harness::new().await;
    let api = EchoServer::start().await;
    h.add_query_key("hub", &api.origin(), "hapikey", TOKEN)
        .await;
    h.add_bearer("crm", "http://127.0.0.1:9", TOKEN).await;
    let plugin = h.load_simple("probe", &["hub", "crm"]);
    let record = h
        .run(&plugin, "call", json!({"url": "/a", "connection": "hub"}))
        .await;
    assert_eq!(record.output().expect("ok")["status"], 200);
    // A failing call (nothing listens on port 9) logs its error too.
    let record = h
        .run(&plugin, "call", json!({"url": "/b", "connection": "crm"}))
        .await;
    assert!(call_error(&record).contains("transport"));

    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        log.contains("invoke-url") && log.contains("hapikey=REDACTED"),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the host log leaks a secret: {log}");
    assert!(
        !serde_json::to_string(&record)
            .expect("json")
            .contains(TOKEN)
    );

    // The server: a connection created over the API, a plugin using it, a
    // failed upload, a token rotation, a restart. Neither the connection's
    // secret nor an admin token reaches the log.
    let mut host = TestHost::start().await;
    let first_admin_token = host.token.clone();
    let service = json!({"name": "hub", "auth_type": "api-key", "base_url": api.origin(),
        "placement": {"in": "query", "name": "hapikey"}});
    host.create("/v1/services", &service).await;
    let connection = json!({"link_name": "hub", "service": "hub",
        "credentials": {"type": "api-key", "key": SERVER_SECRET}});
    host.create("/v1/connections", &connection).await;
    let manifest = json!({"connections": ["hub"]});
    let up = host
        .upload("probe", component_bytes("probe"), Some(&manifest), None)
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let run = host
        .invoke(
            "probe",
            "call",
            json!({"url": "/c?x=1", "connection": "hub"}),
        )
        .await;
    assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    assert!(
        host.upload("probe", b"junk".to_vec(), None, None)
            .await
            .status
            .is_client_error()
    );
    let rotated = host.post("/v1/token/rotate", &json!({})).await;
    assert_eq!(rotated.status, 200);
    assert!(
        !rotated.text.contains("jct_"),
        "the new token is not sent: {}",
        rotated.text
    );
    host.token = std::fs::read_to_string(host.dir.path().join("admin-token")).expect("token");

    // An OAuth connection: authorised in the browser, then refreshed.
    let provider = FakeProvider::start().await;
    let service = service_json("fake", &provider, json!({"metadata_url": null}));
    host.create("/v1/services", &service).await;
    let connection = json!({"link_name": "fake", "service": "fake"});
    host.create("/v1/connections", &connection).await;
    let started = host
        .post("/v1/connections/fake/authorize", &json!({}))
        .await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = started.json["authorize_url"]
        .as_str()
        .expect("url")
        .to_owned();
    let to_provider = browser.get(&url).send().await.expect("authorize");
    let callback = to_provider
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("redirect")
        .to_owned();
    assert_eq!(
        browser
            .get(&callback)
            .send()
            .await
            .expect("callback")
            .status(),
        200
    );
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let oauth_state = url::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    // A webhook called with its secret in the path: the request line
    // names the route, not the secret.
    let hooked = json!({"triggers": [{"webhook": "inbox"}]});
    let up = host
        .upload("hooked", component_bytes("hello"), Some(&hooked), None)
        .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let set = host
        .put(
            "/v1/hooks/hooked/inbox/secret",
            &json!({"secret": HOOK_SECRET}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let called = host
        .http
        .post(format!("{}/hooks/hooked/inbox/{HOOK_SECRET}", host.url))
        .json(&json!({"hello": "hook"}))
        .send()
        .await
        .expect("hook call");
    assert_eq!(called.status(), 202);
    // A connect link's page: its token is a credential, so the request
    // line names the route only.
    host.create(
        "/v1/services",
        &json!({"name": "keyed", "auth_type": "api-key", "base_url": "https://api.example.test"}),
    )
    .await;
    let link = host
        .create(
            "/v1/connect-links",
            &json!({"end_user": "ana", "service": "keyed"}),
        )
        .await;
    let link_url = link.json["url"].as_str().expect("url").to_owned();
    let link_token = link_url.rsplit('/').next().expect("token").to_owned();
    let page = host.http.get(&link_url).send().await.expect("connect page");
    assert_eq!(page.status(), 200);
    host.restart().await;
    assert_eq!(host.get("/v1/plugins").await.status, 200);
    host.stop().await;

    let log =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        log.contains("plugin deployed") && log.contains("plugins loaded"),
        "{log}"
    );
    assert!(log.contains("/hooks/hooked/inbox/<secret>"), "{log}");
    assert!(log.contains("/connect/<token>"), "{log}");
    for secret in [
        SERVER_SECRET,
        HOOK_SECRET,
        link_token.as_str(),
        first_admin_token.as_str(),
        host.token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the server log leaks a secret: {log}"
        );
    }
    // Nor an authorization code, a state, an OAuth token or the client secret.
    for needle in [
        "code-1",
        oauth_state.as_str(),
        "access-token-",
        "refresh-token-",
        CLIENT_SECRET,
    ] {
        assert!(
            !log.contains(needle),
            "the server log leaks `{needle}`: {log}"
        );
    }
    assert!(
        log.contains("connection authorised") && log.contains("token refreshed"),
        "{log}"
    );
}
