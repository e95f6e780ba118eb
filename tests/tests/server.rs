//! The real server over HTTP on 127.0.0.1: uploads, invoke, restart from
//! stored artifacts, rollback, delete, execution history, admin auth on every
//! `/v1` route, the connections and services API, and bad input that must
//! leave the store as it was.

use std::collections::BTreeSet;

use junction_tests::host::{Answer, TestHost};
use junction_tests::mailchimp::{Member, MockMailchimp};
use junction_tests::plugins::{self, component_bytes};
use junction_tests::zoho::MockCrm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Fills `{param}` segments of an OpenAPI path with `value`.
fn fill(path: &str, value: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                value
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every (method, path) the OpenAPI document — generated from the router's
/// own handlers — lists.
async fn documented_routes(host: &TestHost) -> Vec<(Method, String)> {
    let doc = host.get("/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    assert!(doc.json["openapi"].as_str().unwrap_or("").starts_with("3."));
    let mut routes = Vec::new();
    for (path, item) in doc.json["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            routes.push((method, path.clone()));
        }
    }
    routes
}

/// The stored state that bad input must not change.
async fn snapshot(host: &TestHost) -> (Value, Value) {
    let plugins = host.get("/v1/plugins").await.json;
    let executions = host.get("/v1/executions?limit=1000").await.json;
    (plugins, executions)
}

fn assert_error(answer: &Answer, status: StatusCode, needle: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert!(
        answer.message().contains(needle),
        "expected `{needle}` in: {}",
        answer.text
    );
}

#[tokio::test]
async fn every_v1_route_needs_the_admin_token() {
    let host = TestHost::start().await;
    let routes = documented_routes(&host).await;
    let paths: BTreeSet<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();
    for expected in [
        "/v1/plugins",
        "/v1/plugins/{name}",
        "/v1/plugins/{name}/invoke",
        "/v1/plugins/{name}/rollback",
        "/v1/executions",
        "/v1/executions/{id}",
        "/v1/connections",
        "/v1/connections/{link}",
        "/v1/services",
        "/v1/services/{name}",
        "/v1/token/rotate",
        "/v1/openapi.json",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/deliveries",
        "/v1/deliveries/{id}/retry",
        "/v1/triggers",
        "/v1/triggers/{id}",
        "/v1/executions/stream",
        "/v1/hooks/{plugin}/{hook}/secret",
    ] {
        assert!(paths.contains(expected), "{expected} is not documented");
    }
    assert!(routes.len() >= 17, "{routes:?}");

    for (method, path) in &routes {
        let url = format!("{}{}", host.url, fill(path, "x"));
        let none = host
            .http
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request");
        let wrong = host
            .http
            .request(method.clone(), &url)
            .bearer_auth("jct_not-the-token")
            .send()
            .await
            .expect("request");
        for (what, response) in [("no token", none), ("wrong token", wrong)] {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {what}"
            );
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    // A token in another scheme is not accepted either.
    let basic = host
        .http
        .get(format!("{}/v1/plugins", host.url))
        .header("Authorization", format!("Basic {}", host.token))
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Health is public.
    let health = host.http.get(format!("{}/healthz", host.url)).send().await;
    assert_eq!(health.expect("healthz").status(), StatusCode::OK);
}

#[tokio::test]
async fn upload_invoke_restart_rollback_and_delete() {
    let mut host = TestHost::start().await;
    let hello = component_bytes("hello");
    let up = host
        .upload(
            "hello",
            hello.clone(),
            Some(&json!({"triggers": [{"event": "hello"}]})),
            None,
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.json["version"], 1);
    assert_eq!(up.json["size"], hello.len());
    let sha = up.json["sha256"].as_str().expect("sha").to_owned();
    assert_eq!(sha.len(), 64);

    let run = host.invoke("hello", "hello", json!({"name": "Ada"})).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["status"], "ok");
    assert_eq!(run.json["output"]["payload"]["name"], "Ada");
    assert_eq!(
        run.json["logs"][0]["message"],
        "hello received a `hello` event"
    );
    let first_id = run.json["id"].as_str().expect("id").to_owned();

    // The execution is recorded as soon as the invoke returns.
    let stored = host.get(&format!("/v1/executions/{first_id}")).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(stored.json, run.json);

    let listed = host.get("/v1/plugins").await;
    assert_eq!(listed.json[0]["name"], "hello");
    assert_eq!(listed.json[0]["loaded_from"], "compiled");
    assert_eq!(listed.json[0]["triggers"][0]["event"], "hello");

    // Restart: every active plugin is served from its stored artifact.
    host.restart().await;
    let report = host.server().load_report();
    assert_eq!(
        (report.from_artifact, report.compiled, report.failed),
        (1, 0, 0)
    );
    let detail = host.get("/v1/plugins/hello").await;
    assert_eq!(detail.json["loaded_from"], "artifact", "{}", detail.text);
    let run = host
        .invoke("hello", "hello", json!({"name": "Grace"}))
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Grace");
    let history = host.get("/v1/executions?plugin=hello").await;
    assert_eq!(history.json.as_array().expect("list").len(), 2);
    assert_eq!(history.json[1]["id"], first_id.as_str(), "newest first");

    // A second upload is a new version; rollback makes the first active again.
    let probe = component_bytes("probe");
    let up = host.upload("hello", probe, None, None).await;
    assert_eq!(up.json["version"], 2, "{}", up.text);
    let run = host.invoke("hello", "fail", json!({})).await;
    assert_eq!(
        run.json["failure"], "plugin-error",
        "version 2 is the probe"
    );
    let back = host.post("/v1/plugins/hello/rollback", &json!({})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    assert_eq!(back.json["active_version"], 1);
    assert_eq!(back.json["sha256"], sha.as_str());
    assert_eq!(back.json["versions"].as_array().expect("versions").len(), 2);
    let run = host.invoke("hello", "hello", json!({})).await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    let missing = host
        .post("/v1/plugins/hello/rollback", &json!({"version": 9}))
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "no version 9");
    let to_two = host
        .post("/v1/plugins/hello/rollback", &json!({"version": 2}))
        .await;
    assert_eq!(to_two.json["active_version"], 2);

    // The rollback survives a restart.
    host.restart().await;
    let detail = host.get("/v1/plugins/hello").await;
    assert_eq!(detail.json["active_version"], 2);
    assert_eq!(detail.json["loaded_from"], "artifact");

    // Artifacts of another engine (a wasmtime upgrade) are recompiled once,
    // then served from the new artifact.
    let probe_sha = detail.json["sha256"].as_str().expect("sha").to_owned();
    host.stop().await;
    {
        let store = junction_host::store::Store::open(host.dir.path())
            .await
            .expect("store");
        store
            .put_artifact(&probe_sha, "an-older-engine", b"stale machine code")
            .await
            .expect("replace the artifact");
    }
    host.restart().await;
    let report = host.server().load_report();
    assert_eq!((report.from_artifact, report.compiled), (0, 1));
    let detail = host.get("/v1/plugins/hello").await;
    assert_eq!(detail.json["loaded_from"], "compiled");
    host.restart().await;
    assert_eq!(host.server().load_report().from_artifact, 1);

    // Delete removes versions, artifacts and the kv namespace.
    let run = host.invoke("hello", "kv", json!({})).await;
    assert_eq!(run.json["output"]["count"], 1, "{}", run.text);
    let gone = host.delete("/v1/plugins/hello").await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_eq!(
        host.get("/v1/plugins/hello").await.status,
        StatusCode::NOT_FOUND
    );
    let run = host.invoke("hello", "hello", json!({})).await;
    assert_error(&run, StatusCode::NOT_FOUND, "no plugin named `hello`");
    assert_eq!(
        host.delete("/v1/plugins/hello").await.status,
        StatusCode::NOT_FOUND
    );
    let again = host
        .upload("hello", component_bytes("probe"), None, None)
        .await;
    assert_eq!(again.json["version"], 1, "a new plugin starts over");
    let run = host.invoke("hello", "kv", json!({})).await;
    assert_eq!(
        run.json["output"]["count"], 1,
        "the kv namespace was emptied"
    );

    host.stop().await;
    let store = junction_host::store::Store::open(host.dir.path())
        .await
        .expect("redb opens cleanly");
    let record = store.plugin("hello").await.expect("read").expect("stored");
    assert_eq!(record.versions.len(), 1);
    assert!(
        store.component(&sha).await.expect("read").is_none(),
        "unused component removed"
    );
}

#[tokio::test]
async fn mailchimp_sync_runs_over_http_with_granted_connections() {
    let host = TestHost::start().await;
    let mailchimp = MockMailchimp::start("mc-token-http", "unused-us6").await;
    let crm = MockCrm::start("crm-token-http").await;
    let members: Vec<Member> = (0..3)
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

    // The plugin asks for two connections; only one exists yet.
    let manifest = plugins::example_manifest_json("mailchimp-sync");
    let bytes = component_bytes("mailchimp-sync");
    let service = json!({
        // MailChimp's `https://{dc}.api.mailchimp.com/3.0`, with the mock's port.
        "name": "mailchimp-mock", "auth_type": "bearer",
        "base_url": format!("http://{{dc}}:{}/3.0", mailchimp.addr.port()),
    });
    host.create("/v1/services", &service).await;
    host.create(
        "/v1/connections",
        &json!({
            "link_name": "mailchimp", "service": "mailchimp-mock",
            "credentials": {"type": "bearer", "token": "mc-token-http"},
            "metadata": {"dc": mailchimp.addr.ip().to_string()},
        }),
    )
    .await;
    let up = host
        .upload("mailchimp-sync", bytes.clone(), Some(&manifest), None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.json["granted_connections"], json!(["mailchimp"]));
    assert_eq!(up.json["missing_connections"], json!(["zohocrm"]));

    // An explicit grant must name a requested, existing connection.
    let refused = host
        .upload(
            "mailchimp-sync",
            bytes.clone(),
            Some(&manifest),
            Some(&["zohocrm"]),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::BAD_REQUEST,
        "no connection has that link name",
    );

    let crm_service = json!({
        "name": "zoho-mock", "auth_type": "bearer", "base_url": "{api_domain}/crm/v7",
        "placement": {"in": "header", "name": "Authorization", "template": "Zoho-oauthtoken {token}"},
    });
    host.create("/v1/services", &crm_service).await;
    let crm_connection = json!({
        "link_name": "zohocrm", "service": "zoho-mock",
        "credentials": {"type": "bearer", "token": "crm-token-http"},
        "metadata": {"api_domain": crm.api_domain()},
    });
    host.create("/v1/connections", &crm_connection).await;
    let up = host
        .upload("mailchimp-sync", bytes, Some(&manifest), None)
        .await;
    assert_eq!(
        up.json["version"], 2,
        "a refused upload stores nothing: {}",
        up.text
    );
    assert_eq!(
        up.json["granted_connections"],
        json!(["mailchimp", "zohocrm"])
    );

    let run = host
        .invoke(
            "mailchimp-sync",
            "campaign.sync",
            json!({"campaign_id": "c1", "page_size": 100}),
        )
        .await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    assert_eq!(crm.lead_count(), 3);
    let calls = run.json["calls"].as_array().expect("calls");
    assert!(
        calls.iter().any(|c| c["connection"] == "zohocrm"),
        "{calls:?}"
    );

    let connection = host.get("/v1/connections/zohocrm").await;
    assert_eq!(connection.json["used_by"], json!(["mailchimp-sync"]));
    // A service in use cannot be deleted.
    let in_use = host.delete("/v1/services/zoho-mock").await;
    assert_error(&in_use, StatusCode::CONFLICT, "used by connections zohocrm");
}

/// Requests that are well formed but that the resource's state refuses
/// answer 409, never 400: a client cannot fix them by changing the request.
#[tokio::test]
async fn requests_the_state_refuses_answer_conflict() {
    let host = TestHost::start().await;
    host.create(
        "/v1/services",
        &json!({"name": "notion", "auth_type": "bearer", "base_url": "https://api.notion.com/v1"}),
    )
    .await;
    host.create(
        "/v1/connections",
        &json!({"link_name": "notion", "service": "notion", "credentials": {"type": "bearer", "token": "bearer-token-1"}}),
    )
    .await;
    for action in ["authorize", "refresh", "revoke"] {
        let answer = host
            .post(&format!("/v1/connections/notion/{action}"), &json!({}))
            .await;
        assert_error(&answer, StatusCode::CONFLICT, "is not an oauth2 connection");
        assert_eq!(answer.json["error"]["code"], "conflict", "{}", answer.text);
    }
    let in_use = host.delete("/v1/services/notion").await;
    assert_error(&in_use, StatusCode::CONFLICT, "used by connections notion");
    // Once its connection is gone, the service goes too.
    assert_eq!(
        host.delete("/v1/connections/notion").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        host.delete("/v1/services/notion").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn secrets_never_appear_in_a_response() {
    let host = TestHost::start().await;
    let secrets = [
        "sk_live_server_secret_1",
        "basic-password-secret-2",
        "bearer-secret-3",
    ];
    let services = [
        json!({"name": "stripe", "auth_type": "api-key", "base_url": "https://api.stripe.com/v1"}),
        json!({"name": "twilio", "auth_type": "basic", "base_url": "https://api.twilio.com"}),
        json!({"name": "notion", "auth_type": "bearer", "base_url": "https://api.notion.com/v1"}),
    ];
    let connections = [
        json!({"link_name": "stripe", "service": "stripe", "credentials": {"type": "api-key", "key": secrets[0]}}),
        json!({"link_name": "twilio", "service": "twilio", "credentials": {"type": "basic", "username": "AC1", "password": secrets[1]}}),
        json!({"link_name": "notion", "service": "notion", "credentials": {"type": "bearer", "token": secrets[2]}}),
    ];
    let mut bodies = Vec::new();
    for service in &services {
        let answer = host.create("/v1/services", service).await;
        bodies.push(answer.text);
    }
    for connection in &connections {
        let answer = host.create("/v1/connections", connection).await;
        assert_eq!(answer.json["has_secret"], true);
        bodies.push(answer.text);
    }
    let up = host
        .upload(
            "probe",
            component_bytes("probe"),
            Some(&json!({"connections": ["stripe", "notion"]})),
            None,
        )
        .await;
    bodies.push(up.text);
    let run = host.invoke("probe", "connections", json!({})).await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    bodies.push(run.text);

    // Every documented GET, with each real name in its path.
    for (method, path) in documented_routes(&host).await {
        // The live stream never ends; events.rs reads it.
        if method != Method::GET || path.ends_with("/stream") {
            continue;
        }
        for name in ["stripe", "twilio", "notion", "probe"] {
            bodies.push(host.get(&fill(&path, name)).await.text);
        }
    }
    let connection = host.get("/v1/connections/twilio").await;
    assert_eq!(connection.json["has_secret"], true);
    assert!(connection.json.get("credentials").is_none());
    for body in &bodies {
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "a response carried a secret: {body}"
            );
        }
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let host = TestHost::start_with(|config| config.max_component_bytes = 512 * 1024).await;
    let hello = component_bytes("hello");
    assert_eq!(
        host.upload("hello", hello.clone(), None, None).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        host.invoke("hello", "hello", json!({})).await.status,
        StatusCode::OK
    );
    let before = snapshot(&host).await;

    // Over the cap: 413, whether the part or the whole body is too big.
    let mut big = hello.clone();
    big.resize(600 * 1024, 0);
    let answer = host.upload("hello", big, None, None).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "larger than");
    let mut huge = hello.clone();
    huge.resize(3 * 1024 * 1024, 0);
    let answer = host.upload("hello", huge, None, None).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );

    // Each bad component is refused with what is wrong with it.
    let mut truncated = hello.clone();
    truncated.truncate(hello.len() / 2);
    for (bytes, needle) in [
        (b"<html>not wasm</html>".to_vec(), "not a WebAssembly file"),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (component_bytes("wrong-world"), "other:thing/telemetry"),
        (truncated, "does not compile"),
    ] {
        let answer = host.upload("hello", bytes, None, None).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, needle);
        if needle.contains("telemetry") {
            assert!(
                answer.message().contains("missing export `handle`"),
                "{}",
                answer.text
            );
        }
    }

    // Each bad manifest is refused with the field named.
    for (manifest, needle) in [
        (json!({"limits": {"memory-mb": "lots"}}), "limits.memory-mb"),
        (json!({"allowed-hosts": ["ftp://x"]}), "allowed-hosts"),
        (json!({"limits": {"timeout-ms": 999999999}}), "ceiling"),
        (json!({"conections": ["x"]}), "conections"),
        (
            json!({"triggers": [{"event": "a"}, {"schedule": "61 * * * *"}]}),
            "triggers[1]: schedule `61 * * * *` is not a cron expression",
        ),
        (
            json!({"triggers": [{"webhook": "Bad Name"}]}),
            "webhook name",
        ),
    ] {
        let answer = host
            .upload("hello", hello.clone(), Some(&manifest), None)
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, needle);
    }
    let answer = host.upload("Hello_World", hello.clone(), None, None).await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "plugin name `Hello_World` is invalid",
    );
    let answer = host
        .upload(&"a".repeat(64), hello.clone(), None, None)
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "at most 63");
    let answer = host
        .upload(
            "hello",
            hello.clone(),
            Some(&json!({"connections": ["crm"]})),
            Some(&["crm"]),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "cannot grant connection `crm`",
    );
    let answer = host
        .send(
            host.request(Method::PUT, "/v1/plugins/hello")
                .header("Content-Type", "application/wasm")
                .body(hello.clone()),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "multipart/form-data",
    );
    let no_component = reqwest::multipart::Form::new().text("manifest", "{}");
    let answer = host
        .send(
            host.request(Method::PUT, "/v1/plugins/hello")
                .multipart(no_component),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "no `component` part");

    // Malformed JSON, wrong content type, unknown fields, unknown plugins.
    let answer = host
        .send(
            host.request(Method::POST, "/v1/plugins/hello/invoke")
                .header("Content-Type", "application/json")
                .body("{\"kind\": "),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert_eq!(answer.code(), "invalid-json");
    let answer = host
        .send(
            host.request(Method::POST, "/v1/plugins/hello/invoke")
                .body("{}"),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        answer.text
    );
    let answer = host
        .post("/v1/plugins/hello/invoke", &json!({"knd": "x"}))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(answer.message().contains("knd"), "{}", answer.text);
    let answer = host
        .post(
            "/v1/plugins/hello/invoke",
            &json!({"payload": "x".repeat(1024 * 1024 + 10)}),
        )
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload");
    for (method, path) in [
        (Method::GET, "/v1/plugins/nope"),
        (Method::DELETE, "/v1/plugins/nope"),
        (Method::POST, "/v1/plugins/nope/invoke"),
        (Method::POST, "/v1/plugins/nope/rollback"),
        (Method::GET, "/v1/executions/nope"),
        (Method::GET, "/v1/connections/nope"),
        (Method::DELETE, "/v1/connections/nope"),
        (Method::GET, "/v1/services/nope"),
        (Method::GET, "/v1/nothing-here"),
    ] {
        let answer = host
            .send(host.request(method.clone(), path).json(&json!({})))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "not-found", "{method} {path}");
    }
    let answer = host
        .post("/v1/plugins/hello/invoke", &json!({"kind": "two words"}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "`kind`");
    assert_eq!(answer.json["error"]["field"], "kind", "{}", answer.text);
    let answer = host
        .post("/v1/plugins/hello/invoke", &json!({"id": "x".repeat(129)}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "`id`");
    let answer = host.get("/v1/executions?status=maybe").await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "`maybe`");
    let answer = host.get("/v1/executions?limit=0").await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "limit");

    // Services and connections validate too.
    let answer = host
        .post("/v1/services", &json!({"name": "x", "auth_type": "magic"}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "`auth_type` is not valid");
    let answer = host
        .post(
            "/v1/services",
            &json!({"name": "x", "auth_type": "bearer", "base_url": "not a url"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "base_url");
    // The wrong field is data too, not only words.
    assert_eq!(answer.json["error"]["field"], "base_url", "{}", answer.text);
    let answer = host
        .post(
            "/v1/connections",
            &json!({"link_name": "x", "service": "nope", "credentials": {"type": "bearer", "token": "t"}}),
        )
        .await;
    assert_error(&answer, StatusCode::NOT_FOUND, "no service named `nope`");

    assert_eq!(snapshot(&host).await, before, "bad input changed the store");
    // And the server still serves.
    let run = host.invoke("hello", "hello", json!({})).await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
}

#[tokio::test]
async fn concurrent_uploads_of_one_name_get_distinct_versions() {
    let host = std::sync::Arc::new(TestHost::start().await);
    let hello = component_bytes("hello");
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let host = host.clone();
        let bytes = hello.clone();
        tasks.push(tokio::spawn(async move {
            host.upload("hello", bytes, None, None).await
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        let answer = task.await.expect("task");
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        versions.insert(answer.json["version"].as_u64().expect("version"));
    }
    assert_eq!(versions, (1..=6).collect());
    let detail = host.get("/v1/plugins/hello").await;
    assert_eq!(detail.json["active_version"], 6);
    assert_eq!(
        detail.json["versions"].as_array().expect("versions").len(),
        6
    );
    let run = host.invoke("hello", "hello", json!({})).await;
    assert_eq!(run.json["status"], "ok");
}

#[tokio::test]
async fn execution_history_filters_and_keeps_the_newest() {
    let host = TestHost::start_with(|config| config.execution_retention = 5).await;
    assert_eq!(
        host.upload("probe", component_bytes("probe"), None, None)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        host.upload("hello", component_bytes("hello"), None, None)
            .await
            .status,
        StatusCode::CREATED
    );
    let mut ids = Vec::new();
    for i in 0..8 {
        let kind = if i % 2 == 0 { "kv" } else { "fail" };
        let run = host.invoke("probe", kind, json!({"i": i})).await;
        ids.push(run.json["id"].as_str().expect("id").to_owned());
    }
    host.invoke("hello", "hello", json!({})).await;

    let probe = host.get("/v1/executions?plugin=probe&limit=100").await;
    let probe = probe.json.as_array().expect("list").clone();
    assert_eq!(probe.len(), 5, "retention keeps the newest 5");
    let kept: Vec<&str> = probe
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let newest: Vec<&str> = ids.iter().rev().take(5).map(String::as_str).collect();
    assert_eq!(kept, newest, "newest first");
    let dropped = host.get(&format!("/v1/executions/{}", ids[0])).await;
    assert_eq!(dropped.status, StatusCode::NOT_FOUND);

    let failed = host.get("/v1/executions?plugin=probe&status=failed").await;
    let failed = failed.json.as_array().expect("list").clone();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|e| e["status"] == "failed" && e["failure"] == "plugin-error")
    );
    let all = host.get("/v1/executions?limit=2").await;
    let all = all.json.as_array().expect("list").clone();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["plugin"], "hello", "newest first across plugins");
    let ok = host.get("/v1/executions?status=ok").await;
    assert!(
        ok.json
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["status"] == "ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_neither_blocks_the_server_nor_its_shutdown() {
    let mut host = TestHost::start().await;
    let manifest = json!({"limits": {"timeout-ms": 1500, "memory-mb": 32}});
    let up = host
        .upload("probe", component_bytes("probe"), Some(&manifest), None)
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(
        host.upload("hello", component_bytes("hello"), None, None)
            .await
            .status,
        StatusCode::CREATED
    );
    let looping = host
        .request(Method::POST, "/v1/plugins/probe/invoke")
        .json(&json!({"kind": "loop"}));
    let in_flight = tokio::spawn(async move {
        let response = looping.send().await.expect("answered");
        (
            response.status(),
            response.json::<Value>().await.expect("json"),
        )
    });
    // Wait until the loop holds an instance.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !host
        .metric_at_least("junction_plugin_instances_in_use", 1.0)
        .await
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Meanwhile the server serves, and a plugin that allocates without end
    // is stopped at its cap.
    let run = host.invoke("hello", "hello", json!({})).await;
    assert_eq!(run.json["status"], "ok", "{}", run.text);
    let run = host.invoke("probe", "alloc", json!({})).await;
    assert_eq!(run.json["failure"], "memory-limit", "{}", run.text);

    // Shutdown waits for the looping execution, which is cut at its deadline
    // and still answered and recorded.
    host.stop().await;
    let (status, record) = in_flight.await.expect("task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["failure"], "timeout", "{record}");
    let id = record["id"].as_str().expect("id");
    let store = junction_host::store::Store::open(host.dir.path())
        .await
        .expect("redb opens cleanly");
    let stored = store.execution(id).await.expect("read").expect("recorded");
    assert_eq!(
        stored.failure().map(|f| f.0),
        Some(junction_host::runtime::Failure::Timeout)
    );
}
