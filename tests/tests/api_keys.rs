//! API keys for apps and agents against the real server: issued by the
//! admin and shown once, they invoke the plugins they name and nothing
//! else, are listed without their secret, stop working when revoked, and
//! are stored only as a hash.

use junction_tests::host::{Answer, TestHost};
use junction_tests::plugins::component_bytes;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn with_key(
    host: &TestHost,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = host
        .http
        .request(method, format!("{}{path}", host.url))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    host.send(request).await
}

#[tokio::test]
async fn an_api_key_invokes_the_plugins_it_names_and_nothing_else() {
    let mut host = TestHost::start().await;
    for plugin in ["hello", "other"] {
        let up = host
            .upload(plugin, component_bytes("hello"), None, None)
            .await;
        assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    }
    let issued = host
        .post(
            "/v1/api-keys",
            &json!({"name": "Acme app", "end_user": "user-42", "plugins": ["hello", "hello"]}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let key = issued.json["key"]
        .as_str()
        .expect("the key, once")
        .to_owned();
    assert!(key.starts_with("jck_") && key.len() > 40, "{key}");
    let id = issued.json["id"].as_str().expect("id").to_owned();
    assert_eq!(issued.json["plugins"], json!(["hello"]));
    assert_eq!(issued.json["end_user"], "user-42");

    let run = with_key(
        &host,
        &key,
        Method::POST,
        "/v1/plugins/hello/invoke",
        Some(json!({"payload": {"name": "Ada"}})),
    )
    .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.json["output"]["payload"]["name"], "Ada");

    let other = with_key(
        &host,
        &key,
        Method::POST,
        "/v1/plugins/other/invoke",
        Some(json!({})),
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    assert!(other.message().contains("`other`"), "{}", other.message());
    for (method, path) in [
        (Method::GET, "/v1/plugins"),
        (Method::GET, "/v1/connections"),
        (Method::GET, "/v1/api-keys"),
        (Method::DELETE, "/v1/plugins/hello"),
        (Method::POST, "/v1/token/rotate"),
    ] {
        let refused = with_key(&host, &key, method.clone(), path, None).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            refused.text
        );
        assert_eq!(refused.code(), "forbidden");
    }
    assert_eq!(
        host.get("/v1/plugins/hello").await.status,
        StatusCode::OK,
        "not deleted"
    );

    let listed = host.get("/v1/api-keys").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json[0]["id"], id.as_str());
    assert!(!listed.text.contains(&key), "the secret is never listed");
    assert!(listed.json[0].get("key").is_none());

    let made_up = with_key(
        &host,
        "jck_not-a-key",
        Method::POST,
        "/v1/plugins/hello/invoke",
        Some(json!({})),
    )
    .await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED);

    let revoked = host.delete(&format!("/v1/api-keys/{id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let after = with_key(
        &host,
        &key,
        Method::POST,
        "/v1/plugins/hello/invoke",
        Some(json!({})),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "revoked at once");
    assert_eq!(
        host.delete(&format!("/v1/api-keys/{id}")).await.status,
        StatusCode::NOT_FOUND
    );

    host.stop().await;
    let db = std::fs::read(host.dir.path().join("junction.redb")).expect("the store file");
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "only the key's hash is stored"
    );
}

#[tokio::test]
async fn a_key_request_that_is_wrong_names_the_field() {
    let host = TestHost::start().await;
    for (body, field) in [
        (json!({"name": "", "plugins": ["hello"]}), "name"),
        (json!({"name": "app", "plugins": []}), "plugins"),
        (json!({"name": "app", "plugins": ["Not A Name"]}), "plugins"),
        (
            json!({"name": "app", "plugins": ["hello"], "end_user": "has space"}),
            "end_user",
        ),
        (
            json!({"name": "app", "plugins": ["hello"], "end_user": "x".repeat(129)}),
            "end_user",
        ),
    ] {
        let answer = host.post("/v1/api-keys", &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text
        );
        assert_eq!(answer.json["error"]["field"], field, "{}", answer.text);
    }
    let unknown = host
        .post(
            "/v1/api-keys",
            &json!({"name": "app", "plugins": ["hello"], "admin": true}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    assert_eq!(
        host.get("/v1/api-keys").await.json,
        json!([]),
        "nothing issued"
    );
}
