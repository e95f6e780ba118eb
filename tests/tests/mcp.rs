//! MCP at `/mcp` against a client no one here wrote: the official Python
//! `mcp` SDK (installed from PyPI into a cache by scripts/test.sh, named by
//! `JUNCTION_MCP_PYTHON`) connects over Streamable HTTP with an API key,
//! lists the tools of the plugins the key names, and calls one, which runs
//! the plugin in the sandbox; a key cannot see or call another's tool, and
//! without a valid key nothing is served. Two end users' keys call the
//! MailChimp sync tool, each with their own MailChimp account.

use junction_tests::end_users::{ANA_TOKEN, BEN_TOKEN, accounts, saw_only};
use junction_tests::host::TestHost;
use junction_tests::mcp;
use junction_tests::plugins::component_bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs the client; each line it printed, parsed.
async fn client(host: &TestHost, token: &str, call: Option<(&str, Value)>) -> Vec<Value> {
    mcp::client(host, token, None, call).await
}

/// [`client`], naming `end_user` in every request's header.
async fn client_as(
    host: &TestHost,
    token: &str,
    end_user: Option<&str>,
    call: Option<(&str, Value)>,
) -> Vec<Value> {
    mcp::client(host, token, end_user, call).await
}

fn tool_manifest(name: &str, description: &str) -> Value {
    json!({"tool": {
        "name": name,
        "description": description,
        "input-schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    }})
}

async fn key_for(host: &TestHost, plugins: &[&str]) -> String {
    key_of(host, None, plugins).await
}

async fn key_of(host: &TestHost, end_user: Option<&str>, plugins: &[&str]) -> String {
    let issued = host
        .post(
            "/v1/api-keys",
            &json!({"name": "agent", "end_user": end_user, "plugins": plugins}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    issued.json["key"].as_str().expect("key").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lists_and_calls_the_tools_its_key_names() {
    let host = TestHost::start().await;
    for (plugin, tool) in [("hello", "greet"), ("other", "other_tool")] {
        let up = host
            .upload(
                plugin,
                component_bytes("hello"),
                Some(&tool_manifest(tool, &format!("{tool}: says hello"))),
                None,
            )
            .await;
        assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    }
    // A tool without an input schema whose plugin does not describe one
    // is refused at upload, saying how to give it.
    let undescribed = host
        .upload(
            "undescribed",
            component_bytes("hello"),
            Some(&json!({"tool": {"name": "u", "description": "no schema"}})),
            None,
        )
        .await;
    assert_eq!(
        undescribed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        undescribed.text
    );
    assert!(
        undescribed.text.contains("tool_input"),
        "{}",
        undescribed.text
    );
    // A plugin without a tool is no tool.
    let plain = host
        .upload("plain", component_bytes("hello"), None, None)
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.text);
    let key = key_for(&host, &["hello", "plain"]).await;

    let lines = client(&host, &key, Some(("greet", json!({"name": "Ada"})))).await;
    assert_eq!(lines[0]["server"], "junction");
    let tools = lines[1]["tools"].as_array().expect("tools");
    assert_eq!(
        tools.len(),
        1,
        "only the key's plugins that are tools: {tools:?}"
    );
    assert_eq!(tools[0]["name"], "greet");
    assert_eq!(tools[0]["input_schema"]["required"], json!(["name"]));
    assert_eq!(lines[2]["is_error"], false, "{}", lines[2]);
    let structured = &lines[2]["structured"];
    assert_eq!(
        structured["output"]["payload"]["name"], "Ada",
        "{structured}"
    );
    assert_eq!(structured["output"]["kind"], "tool.call", "{structured}");
    // The call is an execution like any other.
    let execution = structured["execution"].as_str().expect("execution id");
    let record = host.get(&format!("/v1/executions/{execution}")).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
    assert_eq!(record.json["plugin"], "hello");

    // Another plugin's tool is neither listed nor callable with this key.
    let lines = client(&host, &key, Some(("other_tool", json!({"name": "x"})))).await;
    assert!(
        lines[2].get("protocol_error").is_some() || lines[2]["is_error"] == true,
        "{}",
        lines[2]
    );
    let runs = host.get("/v1/executions?plugin=other").await;
    assert_eq!(runs.json, json!([]), "the other plugin never ran");
}

#[tokio::test]
async fn mcp_without_a_valid_key_serves_nothing() {
    let host = TestHost::start().await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}});
    for token in [None, Some("jck_made-up"), Some("not-a-token")] {
        let mut request = http
            .post(format!("{}/mcp", host.url))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("request");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // A revoked key stops at once.
    let key = key_for(&host, &["hello"]).await;
    let listed = host.get("/v1/api-keys").await;
    let id = listed.json[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        host.delete(&format!("/v1/api-keys/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let answer = http
        .post(format!("{}/mcp", host.url))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&key)
        .json(&initialize)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_end_users_call_the_mailchimp_sync_each_with_their_own_account() {
    let world = accounts().await;
    let host = &world.host;
    let ana = key_of(host, Some("ana"), &["mailchimp-sync"]).await;
    let ben = key_of(host, Some("ben"), &["mailchimp-sync"]).await;
    let tool = "sync_mailchimp_campaign";

    let lines = client(host, &ana, Some((tool, json!({"campaign_id": "ca"})))).await;
    assert_eq!(lines[1]["tools"][0]["name"], tool, "{}", lines[1]);
    // The schema came from the plugin's own type (schemars, at upload).
    let schema = &lines[1]["tools"][0]["input_schema"];
    assert_eq!(schema["required"], json!(["campaign_id"]), "{schema}");
    assert_eq!(
        schema["properties"]["campaign_id"]["type"], "string",
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["campaign_id"]["description"], "The MailChimp campaign id.",
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["page_size"]["maximum"], 1000,
        "{schema}"
    );
    assert_eq!(lines[2]["is_error"], false, "{}", lines[2]);
    let output = &lines[2]["structured"]["output"];
    assert_eq!(output["campaign"]["list_id"], "list-ana", "{output}");
    let execution = lines[2]["structured"]["execution"].as_str().expect("id");
    let record = host.get(&format!("/v1/executions/{execution}")).await;
    assert_eq!(record.json["end_user"], "ana", "{}", record.text);

    let lines = client(host, &ben, Some((tool, json!({"campaign_id": "cb"})))).await;
    assert_eq!(lines[2]["is_error"], false, "{}", lines[2]);
    assert_eq!(
        lines[2]["structured"]["output"]["campaign"]["list_id"], "list-ben",
        "{}",
        lines[2]
    );
    for (account, token) in [(&world.ana, ANA_TOKEN), (&world.ben, BEN_TOKEN)] {
        assert!(!account.journal.all().is_empty());
        assert!(
            saw_only(account, token),
            "each account saw only its own end user's token"
        );
    }

    // Ana's key reaches only Ana's account: Ben's campaign is not in it.
    let lines = client(host, &ana, Some((tool, json!({"campaign_id": "cb"})))).await;
    assert_eq!(lines[2]["is_error"], true, "{}", lines[2]);
    assert_eq!(
        lines[2]["structured"]["reason"], "plugin-error",
        "{}",
        lines[2]
    );
    // Nor can it act as Ben, here or on the invoke route.
    let lines = client_as(
        host,
        &ana,
        Some("ben"),
        Some((tool, json!({"campaign_id": "cb"}))),
    )
    .await;
    assert!(lines[2].get("protocol_error").is_some(), "{}", lines[2]);
    let http = reqwest::Client::new();
    let as_ben = host
        .send(
            http.post(format!("{}/v1/plugins/mailchimp-sync/invoke", host.url))
                .bearer_auth(&ana)
                .json(&json!({"kind": "campaign.sync", "payload": {"campaign_id": "cb"}, "end_user": "ben"})),
        )
        .await;
    assert_eq!(as_ben.status, StatusCode::FORBIDDEN, "{}", as_ben.text);
    // And never an admin route.
    for path in [
        "/v1/connections",
        "/v1/end-users",
        "/v1/connections/mailchimp?end_user=ana",
    ] {
        let answer = host
            .send(http.get(format!("{}{path}", host.url)).bearer_auth(&ana))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.text
        );
        assert!(!answer.text.contains(ANA_TOKEN));
    }

    // The app's own key names the end user per session.
    let app = key_of(host, None, &["mailchimp-sync"]).await;
    let lines = client_as(
        host,
        &app,
        Some("ben"),
        Some((tool, json!({"campaign_id": "cb"}))),
    )
    .await;
    assert_eq!(lines[2]["is_error"], false, "{}", lines[2]);
    assert_eq!(
        lines[2]["structured"]["output"]["campaign"]["list_id"], "list-ben",
        "{}",
        lines[2]
    );
    let runs = host.get("/v1/executions?end_user=ben").await;
    assert_eq!(
        runs.json.as_array().expect("list").len(),
        2,
        "{}",
        runs.text
    );

    // An end user without a MailChimp connection gets a link to connect one.
    let cyd = key_of(host, Some("cyd"), &["mailchimp-sync"]).await;
    let lines = client(host, &cyd, Some((tool, json!({"campaign_id": "ca"})))).await;
    assert_eq!(lines[2]["is_error"], true, "{}", lines[2]);
    let error = &lines[2]["structured"];
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("end user `cyd` has no connection `mailchimp`"),
        "{error}"
    );
    let connect = &error["connect"][0];
    assert_eq!(connect["link_name"], "mailchimp", "{error}");
    assert_eq!(connect["service"], "mailchimp-mock", "{error}");
    let url = connect["url"].as_str().expect("a connect link");
    let page = http.get(url).send().await.expect("the hosted page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Connect your mailchimp-mock account"),
        "{html}"
    );
}
