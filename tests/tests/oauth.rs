//! OAuth connections through the real server and a fake provider on
//! 127.0.0.1: the browser flow (authorize URL, state, PKCE, callback, code
//! exchange, metadata capture), a plugin calling the API with the connected
//! connection, client credentials, and callbacks that must be refused.

use junction_tests::host::TestHost;
use junction_tests::mailchimp::{Member, MockMailchimp};
use junction_tests::oauth::{
    self, CLIENT_ID, CLIENT_SECRET, FakeProvider, browser, follow, service_json,
};
use junction_tests::plugins::{self, component_bytes};
use junction_tests::zoho::MockCrm;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn setup(host: &TestHost, provider: &FakeProvider, extra: Value) {
    let created = host
        .create("/v1/services", &service_json("fake", provider, extra))
        .await;
    assert_eq!(created.json["has_client_secret"], true);
    assert!(!created.text.contains(CLIENT_SECRET));
    let connection = host
        .create(
            "/v1/connections",
            &json!({"link_name": "fake", "service": "fake"}),
        )
        .await;
    assert_eq!(connection.json["status"], "disconnected");
    assert_eq!(connection.json["has_secret"], false);
}

async fn authorize_url(host: &TestHost) -> url::Url {
    authorize_url_for(host, "fake").await
}

async fn authorize_url_for(host: &TestHost, link: &str) -> url::Url {
    let started = host
        .post(&format!("/v1/connections/{link}/authorize"), &json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    url::Url::parse(started.json["authorize_url"].as_str().expect("url")).expect("url parses")
}

#[tokio::test]
async fn browser_flow_connects_and_a_plugin_calls_the_api() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;

    let url = authorize_url(&host).await;
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/oauth/callback", host.url)
    );
    assert_eq!(query["scope"], "read,write", "the service's separator");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].len() >= 22, "at least 128 bits of state");

    // The provider approves and sends the browser back.
    let callback = follow(url.as_str()).await;
    assert!(callback.starts_with(&format!("{}/oauth/callback?code=", host.url)));
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("page");
    assert!(html.contains("is connected"), "{html}");

    // The token request carried the same redirect URI and the PKCE verifier.
    {
        let provider_state = provider.lock();
        let request = &provider_state.token_requests[0];
        assert_eq!(request["redirect_uri"], query["redirect_uri"]);
        assert!(request.contains_key("code_verifier"));
        assert_eq!(request["grant_type"], "authorization_code");
    }

    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );
    assert_eq!(connection.json["has_secret"], true);
    assert_eq!(connection.json["scopes"], json!(["read", "write"]));
    assert_eq!(
        connection.json["metadata"]["dc"], "us6",
        "from the metadata call"
    );
    assert_eq!(
        connection.json["metadata"]["api_domain"],
        "https://api.example.test"
    );
    assert!(
        !connection.text.contains("access-token"),
        "{}",
        connection.text
    );

    // A replayed callback is refused: the state worked once.
    let replay = browser().get(&callback).send().await.expect("replay");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.expect("page").contains("not valid"));

    // A plugin granted the connection calls the provider's API with it.
    deploy_probe(&host).await;
    let run = host
        .invoke(
            "probe",
            "call",
            json!({"url": "/api/me", "connection": "fake"}),
        )
        .await;
    assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    assert!(
        run.json["output"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("Ada")
    );
    assert!(
        !run.text.contains("access-token"),
        "the plugin never sees the token"
    );

    // Authorising again reconnects the same link name with a new token.
    let url = authorize_url(&host).await;
    let callback = follow(url.as_str()).await;
    assert_eq!(
        browser().get(&callback).send().await.expect("cb").status(),
        StatusCode::OK
    );
    assert_eq!(provider.lock().access_tokens.len(), 2);

    let mut host = host;
    host.stop().await;
    let redb = std::fs::read(host.dir.path().join("junction.redb")).expect("redb");
    for secret in ["access-token-2", "refresh-token-2", CLIENT_SECRET] {
        assert!(
            !redb.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the redb file in plain text"
        );
    }
}

#[tokio::test]
async fn refused_and_forged_callbacks_change_nothing() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;

    // The user says no at the provider.
    provider.lock().deny_with = Some("access_denied".into());
    let url = authorize_url(&host).await;
    let callback = follow(url.as_str()).await;
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.expect("page");
    assert!(
        html.contains("access_denied") && html.contains("The user said no"),
        "{html}"
    );
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(connection.json["status"], "disconnected");
    assert!(
        connection.json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("access_denied")
    );

    // A state that was never issued, none at all, or HTML in the error text.
    provider.lock().deny_with = None;
    for query in [
        "code=code-1&state=forged-state-value",
        "code=code-1",
        "error=%3Cscript%3Ealert(1)%3C/script%3E&state=x",
    ] {
        let page = browser()
            .get(format!("{}/oauth/callback?{query}", host.url))
            .send()
            .await
            .expect("callback");
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{query}");
        let html = page.text().await.expect("page");
        assert!(html.contains("not valid"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    // A token endpoint that answers HTML: a classified failure, no tokens.
    provider.lock().token_override = Some((
        StatusCode::OK,
        "text/html".into(),
        "<html>maintenance</html>".into(),
    ));
    let url = authorize_url(&host).await;
    let callback = follow(url.as_str()).await;
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    assert!(
        page.text()
            .await
            .expect("page")
            .contains("neither JSON nor a form")
    );
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(connection.json["status"], "disconnected");
    assert_eq!(connection.json["has_secret"], false);
}

#[tokio::test]
async fn client_credentials_connect_without_a_browser() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(
        &host,
        &provider,
        json!({"grant": "client-credentials", "client_auth": "basic", "authorize_url": null}),
    )
    .await;
    let started = host
        .post("/v1/connections/fake/authorize", &json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    assert_eq!(started.json["connected"], true);
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(connection.json["status"], "connected");
    assert_eq!(
        provider.lock().token_requests[0]["grant_type"],
        "client_credentials"
    );
}

#[tokio::test]
async fn bad_oauth_services_and_connections_are_refused() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    let cases = [
        (
            json!({"grant": "client-credentials", "authorize_url": null}),
            None,
            "confidential client",
        ),
        (
            json!({"token_url": "not a url"}),
            Some(CLIENT_SECRET),
            "oauth.token_url",
        ),
        (
            json!({"scopes": ["read write"]}),
            Some(CLIENT_SECRET),
            "scope `read write`",
        ),
        (
            json!({"authorize_url": null}),
            Some(CLIENT_SECRET),
            "authorize_url is required",
        ),
    ];
    for (extra, secret, needle) in cases {
        let mut body = service_json("bad", &provider, extra);
        match secret {
            Some(secret) => body["client_secret"] = json!(secret),
            None => {
                body.as_object_mut().map(|o| o.remove("client_secret"));
            }
        }
        let answer = host.post("/v1/services", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert!(
            answer.message().contains(needle),
            "{needle}: {}",
            answer.text
        );
    }
    let no_settings = host
        .post(
            "/v1/services",
            &json!({"name": "bad", "auth_type": "oauth2"}),
        )
        .await;
    assert_eq!(no_settings.status, StatusCode::BAD_REQUEST);
    let listed = host.get("/v1/services").await;
    let configured: Vec<&Value> = listed
        .json
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["configured"] == true)
        .collect();
    assert!(configured.is_empty(), "nothing stored: {configured:?}");

    setup(&host, &provider, json!({})).await;
    let with_secret = host
        .post(
            "/v1/connections",
            &json!({"link_name": "other", "service": "fake", "credentials": {"type": "bearer", "token": "t"}}),
        )
        .await;
    assert_eq!(
        with_secret.status,
        StatusCode::BAD_REQUEST,
        "{}",
        with_secret.text
    );
    let bad_scope = host
        .post(
            "/v1/connections",
            &json!({"link_name": "other", "service": "fake", "scopes": ["a b"]}),
        )
        .await;
    assert_eq!(bad_scope.status, StatusCode::BAD_REQUEST);
    let unknown = host
        .post("/v1/connections/nope/authorize", &json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// Connects `fake` through the browser flow.
async fn connect(host: &TestHost) {
    oauth::connect(host, "fake").await;
}

async fn deploy_probe(host: &TestHost) {
    let up = host
        .upload(
            "probe",
            component_bytes("probe"),
            Some(&json!({"connections": ["fake"]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
}

async fn call_api(host: &TestHost) -> Value {
    let run = host
        .invoke(
            "probe",
            "call",
            json!({"url": "/api/me", "connection": "fake"}),
        )
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    run.json["output"].clone()
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_after_a_401() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    // The first token expires within the refresh margin.
    provider.lock().expires_in = "60".into();
    connect(&host).await;
    deploy_probe(&host).await;
    provider.lock().expires_in = "3600".into();

    let output = call_api(&host).await;
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(
        provider.lock().refresh_requests,
        1,
        "refreshed ahead of expiry"
    );
    let again = call_api(&host).await;
    assert_eq!(again["status"], 200);
    assert_eq!(
        provider.lock().refresh_requests,
        1,
        "the new token is good for an hour"
    );

    // The provider drops the token early: the 401 triggers one refresh and one retry.
    provider.lock().expire_access_tokens();
    let output = call_api(&host).await;
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(provider.lock().refresh_requests, 2);

    // A forced refresh through the API rotates the refresh token.
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(refreshed.json["status"], "connected");
    assert_eq!(provider.lock().refresh_requests, 3);
}

#[tokio::test]
async fn a_revoked_grant_needs_reauthorisation() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    connect(&host).await;
    deploy_probe(&host).await;
    // The user revokes the app at the provider: tokens and grant are gone.
    {
        let mut p = provider.lock();
        p.expire_access_tokens();
        p.live_refresh_tokens.clear();
    }
    let output = call_api(&host).await;
    assert_eq!(output["status"], 401, "the API's answer stands: {output}");
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "needs-reauth",
        "{}",
        connection.text
    );
    assert!(
        connection.json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid_grant")
    );
    let output = call_api(&host).await;
    assert!(
        output["error"]
            .as_str()
            .unwrap_or("")
            .contains("connection unavailable"),
        "{output}"
    );
    // Connecting again brings it back under the same link name.
    connect(&host).await;
    assert_eq!(call_api(&host).await["status"], 200);
}

#[tokio::test]
async fn revoke_tells_the_provider_and_forgets_the_tokens() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    connect(&host).await;
    let revoked = host.post("/v1/connections/fake/revoke", &json!({})).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.json["status"], "disconnected");
    assert_eq!(revoked.json["has_secret"], false);
    let hints: Vec<String> = provider
        .lock()
        .revocations
        .iter()
        .map(|(h, _)| h.clone())
        .collect();
    assert_eq!(hints, ["refresh_token", "access_token"]);
    assert!(provider.lock().access_tokens.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_serves_500_concurrent_executions() {
    let host = std::sync::Arc::new(TestHost::start().await);
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    provider.lock().expires_in = "60".into();
    connect(&host).await;
    deploy_probe(&host).await;
    provider.lock().expires_in = "3600".into();

    let mut tasks = Vec::new();
    for _ in 0..500 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            host.invoke(
                "probe",
                "call",
                json!({"url": "/api/me", "connection": "fake"}),
            )
            .await
        }));
    }
    for task in tasks {
        let run = task.await.expect("task");
        assert_eq!(run.json["output"]["status"], 200, "{}", run.text);
    }
    // The provider rotates refresh tokens and revokes the grant on reuse:
    // a second refresh with the same token would have failed every call.
    assert_eq!(provider.lock().refresh_requests, 1);
}

/// Each token-response quirk from REFERENCE.md, sent by the provider on the
/// code exchange, yields a connected connection with what the quirk means.
#[tokio::test]
async fn token_response_quirks_connect() {
    struct Quirk {
        name: &'static str,
        status: StatusCode,
        content_type: &'static str,
        body: &'static str,
        extra: Value,
        expires: bool,
        scopes: Value,
    }
    let quirks = [
        Quirk {
            name: "expires_in as a string",
            status: StatusCode::OK,
            content_type: "application/json",
            body: r#"{"access_token":"q-1","refresh_token":"r-1","token_type":"bearer","expires_in":"3600"}"#,
            extra: json!({}),
            expires: true,
            scopes: json!(["read", "write"]),
        },
        Quirk {
            name: "expires_in 0 (MailChimp: never expires)",
            status: StatusCode::OK,
            content_type: "application/json",
            body: r#"{"access_token":"q-2","expires_in":0,"scope":null}"#,
            extra: json!({}),
            expires: false,
            scopes: json!(["read", "write"]),
        },
        Quirk {
            name: "no expires_in, no token_type (Salesforce)",
            status: StatusCode::OK,
            content_type: "application/json",
            body: r#"{"access_token":"q-3","instance_url":"https://na1.example.test"}"#,
            extra: json!({"capture": ["instance_url"]}),
            expires: false,
            scopes: json!(["read", "write"]),
        },
        Quirk {
            name: "uppercase token_type, array scope",
            status: StatusCode::OK,
            content_type: "application/json",
            body: r#"{"access_token":"q-4","token_type":"BEARER","scope":["repo","user"]}"#,
            extra: json!({}),
            expires: false,
            scopes: json!(["repo", "user"]),
        },
        Quirk {
            name: "form-encoded (GitHub without Accept)",
            status: StatusCode::OK,
            content_type: "application/x-www-form-urlencoded",
            body: "access_token=q-5&token_type=bearer&scope=repo%2Cgist",
            extra: json!({}),
            expires: false,
            scopes: json!(["repo", "gist"]),
        },
        Quirk {
            name: "201 Created",
            status: StatusCode::CREATED,
            content_type: "application/json",
            body: r#"{"access_token":"q-6","expires_in":7200}"#,
            extra: json!({}),
            expires: true,
            scopes: json!(["read", "write"]),
        },
        Quirk {
            name: "Slack nested user token",
            status: StatusCode::OK,
            content_type: "application/json",
            body: r#"{"ok":true,"access_token":"xoxb-bot","authed_user":{"id":"U1","access_token":"q-7","scope":"chat:write"}}"#,
            extra: json!({"access_token_path": "authed_user.access_token"}),
            expires: false,
            scopes: json!(["chat:write"]),
        },
    ];
    for quirk in quirks {
        let host = TestHost::start().await;
        let provider = FakeProvider::start().await;
        let mut extra = quirk.extra.clone();
        extra["metadata_url"] = Value::Null;
        setup(&host, &provider, extra).await;
        provider.lock().token_override =
            Some((quirk.status, quirk.content_type.into(), quirk.body.into()));
        connect(&host).await;
        let connection = host.get("/v1/connections/fake").await;
        assert_eq!(
            connection.json["status"], "connected",
            "{}: {}",
            quirk.name, connection.text
        );
        assert_eq!(connection.json["has_secret"], true, "{}", quirk.name);
        assert_eq!(connection.json["scopes"], quirk.scopes, "{}", quirk.name);
        assert_eq!(
            connection.json["expires_at_ms"].is_u64(),
            quirk.expires,
            "{}: {}",
            quirk.name,
            connection.text
        );
        if quirk.name.contains("Salesforce") {
            assert_eq!(
                connection.json["metadata"]["instance_url"],
                "https://na1.example.test"
            );
        }
    }
}

#[tokio::test]
async fn catalog_entries_are_listed_and_configured_with_a_client_id() {
    let host = TestHost::start().await;
    let listed = host.get("/v1/services").await;
    let catalog: Vec<&Value> = listed
        .json
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["source"] == "catalog" && s["configured"] == false)
        .collect();
    assert!(catalog.len() >= 25, "{}", listed.text);
    let zoho = catalog
        .iter()
        .find(|s| s["name"] == "zoho-crm")
        .expect("zoho-crm");
    assert_eq!(zoho["placement"]["template"], "Zoho-oauthtoken {token}");
    assert_eq!(zoho["oauth"]["capture"], json!(["api_domain"]));

    let missing = host
        .post(
            "/v1/services",
            &json!({"catalog": "google", "client_secret": "s"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.message().contains("client_id"), "{}", missing.text);
    let unknown = host.post("/v1/services", &json!({"catalog": "nope"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert!(
        unknown.message().contains("no catalog entry `nope`"),
        "{}",
        unknown.text
    );
    let created = host.create(
            "/v1/services",
            &json!({"catalog": "google", "client_id": "1234.apps.example", "client_secret": "google-secret"}),
        ).await;
    assert_eq!(created.json["name"], "google");
    assert!(!created.text.contains("google-secret"));

    host.create(
        "/v1/connections",
        &json!({"link_name": "gmail", "service": "google"}),
    )
    .await;
    let started = host
        .post("/v1/connections/gmail/authorize", &json!({}))
        .await;
    let url = started.json["authorize_url"].as_str().expect("url");
    assert!(
        url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"),
        "{url}"
    );
    assert!(
        url.contains("access_type=offline") && url.contains("prompt=consent"),
        "{url}"
    );
    assert!(url.contains("client_id=1234.apps.example"), "{url}");

    let listed = host.get("/v1/services").await;
    let google = listed
        .json
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["name"] == "google")
        .cloned()
        .expect("google");
    assert_eq!(google["configured"], true);
    assert_eq!(google["source"], "catalog");
    assert_eq!(google["has_client_secret"], true);
}

#[tokio::test]
async fn token_endpoints_on_internal_addresses_are_refused_by_default() {
    let host = TestHost::start_with(|config| config.allow_private_network = false).await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({"metadata_url": null})).await;
    let url = authorize_url(&host).await;
    let callback = follow(url.as_str()).await;
    let page = browser().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    let html = page.text().await.expect("page");
    assert!(html.contains("loopback"), "{html}");
    assert!(
        provider.lock().token_requests.is_empty(),
        "nothing was sent"
    );
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(connection.json["status"], "disconnected");
}

#[tokio::test]
async fn a_provider_outage_is_retried_and_invalid_client_flags_the_service() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    connect(&host).await;

    // Two 503s, then success: one refresh call from the admin's point of view.
    provider.lock().fail_next = 2;
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(provider.lock().refresh_requests, 3);

    // Still down after every attempt: a classified failure, tokens kept.
    provider.lock().fail_next = 10;
    let failed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "connected",
        "still usable while the token is valid"
    );
    assert_eq!(connection.json["has_secret"], true);
    assert!(
        connection.json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 503")
    );
    provider.lock().fail_next = 0;

    // The provider no longer knows the client: the connection is flagged.
    provider.lock().token_override = Some((
        StatusCode::UNAUTHORIZED,
        "application/json".into(),
        r#"{"error":"invalid_client"}"#.into(),
    ));
    let refused = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(connection.json["status"], "error");
    assert!(
        connection.json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("fix its client id or secret"),
        "{}",
        connection.text
    );
    let service = host.get("/v1/services/fake").await;
    assert!(
        service.json["problem"]
            .as_str()
            .unwrap_or("")
            .contains("invalid_client"),
        "the service is flagged: {}",
        service.text
    );
    let history = connection.json["history"].as_array().expect("history");
    let statuses: Vec<&str> = history
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(statuses.first(), Some(&"connected"), "{history:?}");
    assert_eq!(statuses.last(), Some(&"error"), "{history:?}");
    assert!(
        history
            .iter()
            .all(|h| h["at_ms"].is_u64() && h["reason"].is_string())
    );

    // Fixed at the provider: the next good token clears the service's flag.
    provider.lock().token_override = None;
    connect(&host).await;
    let service = host.get("/v1/services/fake").await;
    assert!(service.json["problem"].is_null(), "{}", service.text);
}

#[tokio::test]
async fn the_background_sweep_refreshes_expiring_connections() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    provider.lock().expires_in = "60".into();
    connect(&host).await;
    provider.lock().expires_in = "3600".into();
    let before = host.get("/v1/connections/fake").await;
    let report = host.server().tokens().sweep().await;
    assert_eq!((report.refreshed, report.failed), (1, 0));
    let after = host.get("/v1/connections/fake").await;
    assert!(after.json["expires_at_ms"].as_u64() > before.json["expires_at_ms"].as_u64());
    assert!(after.json["last_refresh_ms"].is_u64());
    // Fresh for an hour and refreshed just now: nothing to do.
    let report = host.server().tokens().sweep().await;
    assert_eq!((report.refreshed, report.failed), (0, 0));
    assert_eq!(provider.lock().refresh_requests, 1);
}

/// The seed's example on connections obtained through the OAuth flow:
/// MailChimp via OAuth plus its metadata call (`dc`), Zoho CRM via OAuth with
/// `Zoho-oauthtoken` on the captured `api_domain` — and the CRM token
/// expiring mid-run, between the MailChimp reads and the CRM upsert.
#[tokio::test]
async fn mailchimp_sync_runs_on_oauth_connections_with_the_crm_token_expiring_mid_run() {
    let host = TestHost::start().await;
    let mc_auth = FakeProvider::start().await;
    let crm_auth = FakeProvider::start().await;
    let mailchimp = MockMailchimp::start_with(mc_auth.token_check(), "unused-us6").await;
    let crm = MockCrm::start_with(crm_auth.token_check()).await;
    mc_auth.lock().expires_in = "0".into();
    crm_auth.lock().api_domain = crm.api_domain();
    let members: Vec<Member> = (0..5)
        .map(|i| {
            Member::new(
                &format!("p{i}@example.com"),
                "First",
                "Last",
                "2026-11-01T10:00:00+00:00",
            )
        })
        .collect();
    mailchimp.add_campaign("c1", "list1", members);

    let mut mc_service = service_json("mc", &mc_auth, json!({}));
    // The provider's metadata call captures `dc`; the mock is reached by address.
    mc_service["base_url"] = json!(format!("http://{{mock_ip}}:{}/3.0", mailchimp.addr.port()));
    host.create("/v1/services", &mc_service).await;
    let mut crm_service = service_json("zoho", &crm_auth, json!({"metadata_url": null}));
    crm_service["base_url"] = json!("{api_domain}/crm/v7");
    crm_service["placement"] =
        json!({"in": "header", "name": "Authorization", "template": "Zoho-oauthtoken {token}"});
    host.create("/v1/services", &crm_service).await;
    let mc_connection = json!({"link_name": "mailchimp", "service": "mc",
        "metadata": {"mock_ip": mailchimp.addr.ip().to_string()}});
    host.create("/v1/connections", &mc_connection).await;
    let crm_connection = json!({"link_name": "zohocrm", "service": "zoho"});
    host.create("/v1/connections", &crm_connection).await;
    for link in ["mailchimp", "zohocrm"] {
        oauth::connect(&host, link).await;
    }
    let mc = host.get("/v1/connections/mailchimp").await;
    assert_eq!(mc.json["metadata"]["dc"], "us6", "{}", mc.text);
    assert!(
        mc.json["expires_at_ms"].is_null(),
        "MailChimp tokens do not expire"
    );
    let zoho = host.get("/v1/connections/zohocrm").await;
    assert_eq!(
        zoho.json["metadata"]["api_domain"],
        crm.api_domain().as_str()
    );

    let manifest = plugins::example_manifest_json("mailchimp-sync");
    let up = host
        .upload(
            "mailchimp-sync",
            component_bytes("mailchimp-sync"),
            Some(&manifest),
            None,
        )
        .await;
    assert_eq!(
        up.json["granted_connections"],
        json!(["mailchimp", "zohocrm"]),
        "{}",
        up.text
    );

    // The CRM's token is revoked at the provider before the run reaches it.
    crm_auth.lock().expire_access_tokens();
    let run = host
        .invoke(
            "mailchimp-sync",
            "campaign.sync",
            json!({"campaign_id": "c1", "page_size": 100}),
        )
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    assert_eq!(crm.lead_count(), 5);
    assert_eq!(
        crm_auth.lock().refresh_requests,
        1,
        "one refresh, then the retry succeeded"
    );
    assert_eq!(mc_auth.lock().refresh_requests, 0);
    let upserts: Vec<&Value> = run.json["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["connection"] == "zohocrm")
        .collect();
    assert!(upserts.iter().all(|c| c["status"] == 200), "{upserts:?}");
    assert!(!run.text.contains("access-token"), "no token in the record");
}

#[tokio::test]
async fn a_huge_token_answer_is_a_classified_failure() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({"metadata_url": null})).await;
    connect(&host).await;
    let before = host.get("/v1/connections/fake").await;
    provider.lock().token_override = Some((
        StatusCode::OK,
        "application/json".into(),
        format!("{{\"access_token\":\"{}\"}}", "x".repeat(10 * 1024 * 1024)),
    ));
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(
        refreshed.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        refreshed.message()
    );
    assert!(
        refreshed.message().contains("larger than"),
        "{}",
        refreshed.message()
    );
    let after = host.get("/v1/connections/fake").await;
    assert_eq!(
        after.json["status"], "connected",
        "the previous tokens are kept"
    );
    assert_eq!(after.json["expires_at_ms"], before.json["expires_at_ms"]);
}

#[tokio::test]
async fn endpoints_are_discovered_from_the_issuer() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    let discovered = json!({
        "name": "discovered", "auth_type": "oauth2", "base_url": provider.origin(),
        "client_secret": CLIENT_SECRET,
        "oauth": {"client_id": CLIENT_ID, "issuer": provider.origin(), "metadata_url": null},
    });
    let created = host.create("/v1/services", &discovered).await;
    assert_eq!(
        created.json["oauth"]["token_url"],
        format!("{}/token", provider.origin())
    );
    assert_eq!(
        created.json["oauth"]["revoke_url"],
        format!("{}/revoke", provider.origin())
    );
    let connection = json!({"link_name": "disc", "service": "discovered"});
    host.create("/v1/connections", &connection).await;
    let url = authorize_url_for(&host, "disc").await;
    let callback = follow(url.as_str()).await;
    assert_eq!(
        browser().get(&callback).send().await.expect("cb").status(),
        StatusCode::OK
    );

    // A document naming another issuer is refused, and nothing is stored.
    provider.lock().issuer_override = Some("https://evil.example".into());
    let mut other = discovered.clone();
    other["name"] = json!("other");
    let refused = host.post("/v1/services", &other).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.message().contains("evil.example"),
        "{}",
        refused.text
    );
    assert_eq!(
        host.get("/v1/services/other").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one_and_403_can_mean_expired() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({"refresh_on_status": [401, 403]})).await;
    connect(&host).await;
    deploy_probe(&host).await;
    let original = provider
        .lock()
        .live_refresh_tokens
        .iter()
        .next()
        .cloned()
        .expect("a refresh token was issued");

    // The provider answers a refresh with an access token only.
    provider.lock().token_override = Some((
        StatusCode::OK,
        "application/json".into(),
        r#"{"access_token":"access-only","expires_in":3600}"#.into(),
    ));
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    provider.lock().token_override = None;
    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let last = provider
        .lock()
        .token_requests
        .last()
        .cloned()
        .expect("request");
    assert_eq!(
        last["refresh_token"], original,
        "the old refresh token was kept"
    );

    // This API says 403 for an expired token; the service says so too.
    provider.lock().reject_with = 403;
    provider.lock().expire_access_tokens();
    let before = provider.lock().refresh_requests;
    let output = call_api(&host).await;
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(provider.lock().refresh_requests, before + 1);
}

#[tokio::test]
async fn a_storm_of_401s_costs_one_refresh_and_the_401_goes_back_to_the_plugin() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    connect(&host).await;
    deploy_probe(&host).await;
    // The API refuses every token, even a fresh one.
    provider.lock().refuse_every_token = true;
    let calls: Vec<Value> = (0..40)
        .map(|_| json!({"url": "/api/me", "connection": "fake"}))
        .collect();
    let run = host.invoke("probe", "calls", json!(calls)).await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    let outputs = run.json["output"].as_array().expect("one answer per call");
    assert_eq!(outputs.len(), 40);
    for output in outputs {
        assert_eq!(
            output["status"], 401,
            "the 401 reaches the plugin: {output}"
        );
    }
    assert_eq!(
        provider.lock().refresh_requests,
        1,
        "one refresh per connection per interval, however many 401s"
    );
    // A second execution within the interval refreshes nothing either.
    let again = host.invoke("probe", "calls", json!(calls)).await;
    assert_eq!(again.json["status"], "ok", "{}", again.text);
    assert_eq!(provider.lock().refresh_requests, 1);
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );
}

#[tokio::test]
async fn a_token_without_expiry_or_refresh_token_is_never_broken_by_a_refresh_or_a_401() {
    let host = TestHost::start().await;
    let provider = FakeProvider::start().await;
    setup(&host, &provider, json!({})).await;
    // MailChimp and GitHub: no refresh token, `expires_in: 0`.
    {
        let mut p = provider.lock();
        p.issue_refresh_tokens = false;
        p.expires_in = "0".into();
    }
    connect(&host).await;
    deploy_probe(&host).await;
    assert_eq!(call_api(&host).await["status"], 200);

    let refreshed = host.post("/v1/connections/fake/refresh", &json!({})).await;
    assert_eq!(refreshed.status, StatusCode::CONFLICT, "{}", refreshed.text);
    assert!(
        refreshed.text.contains("nothing to refresh"),
        "{}",
        refreshed.text
    );
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );

    // One 401 is recorded, returned, and breaks nothing.
    provider.lock().refuse_every_token = true;
    let output = call_api(&host).await;
    assert_eq!(output["status"], 401, "{output}");
    let connection = host.get("/v1/connections/fake").await;
    assert_eq!(
        connection.json["status"], "connected",
        "{}",
        connection.text
    );
    assert!(
        connection.json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("401"),
        "{}",
        connection.text
    );
    provider.lock().refuse_every_token = false;
    assert_eq!(call_api(&host).await["status"], 200);
    assert_eq!(provider.lock().refresh_requests, 0);
}

#[tokio::test]
async fn callbacks_with_unknown_states_write_nothing() {
    let host = TestHost::start_with(|config| config.public_rate_per_minute = 100_000).await;
    let db = host.config.data_dir.join("junction.redb");
    let before = std::fs::metadata(&db).expect("db").len();
    let modified = std::fs::metadata(&db)
        .expect("db")
        .modified()
        .expect("mtime");
    for i in 0..200 {
        let page = browser()
            .get(format!(
                "{}/oauth/callback?state=made-up-{i}&code=x",
                host.url
            ))
            .send()
            .await
            .expect("callback answers");
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
    let after = std::fs::metadata(&db).expect("db");
    assert_eq!(after.len(), before, "the database did not grow");
    assert_eq!(
        after.modified().expect("mtime"),
        modified,
        "nothing was written"
    );
}

#[tokio::test]
async fn the_public_routes_are_rate_limited_per_client_address() {
    let host = TestHost::start_with(|config| config.public_rate_per_minute = 30).await;
    let mut limited = None;
    for i in 0..40 {
        let page = browser()
            .get(format!("{}/oauth/callback?state=flood-{i}", host.url))
            .send()
            .await
            .expect("callback answers");
        if page.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, page));
            break;
        }
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
    let (after, page) = limited.expect("the flood is limited");
    assert!(after >= 30, "the first {after} requests were allowed");
    let retry_after: u64 = page
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = page.text().await.expect("body");
    assert!(body.contains("rate-limited"), "{body}");
    // Webhooks share the allowance; the admin API does not.
    let hook = browser()
        .post(format!("{}/hooks/nobody/nothing", host.url))
        .send()
        .await
        .expect("hook answers");
    assert_eq!(hook.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(host.get("/v1/plugins").await.status, StatusCode::OK);
}
