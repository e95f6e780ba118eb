//! MCP at `/mcp` against a client no one here wrote: the official Python
//! `mcp` SDK (installed from PyPI into a cache by scripts/test.sh, named by
//! `JUNCTION_MCP_PYTHON`) connects over Streamable HTTP with an API key,
//! lists the tools of the plugins the key names, and calls one, which runs
//! the plugin in the sandbox; a key cannot see or call another's tool, and
//! without a valid key nothing is served.

use std::process::Command;

use junction_tests::host::TestHost;
use junction_tests::plugins::component_bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn python() -> String {
    match std::env::var("JUNCTION_MCP_PYTHON") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "the MCP tests need the Python `mcp` SDK: run ./scripts/test.sh, which installs it into a cache, or set JUNCTION_MCP_PYTHON to a python that has `mcp` installed"
        ),
    }
}

/// Runs the client; each line it printed, parsed.
async fn client(host: &TestHost, token: &str, call: Option<(&str, Value)>) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/client.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .arg(format!("{}/mcp", host.url))
        .arg(token);
    if let Some((tool, arguments)) = call {
        command.arg(tool).arg(arguments.to_string());
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("client task")
        .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "the MCP client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

fn tool_manifest(name: &str, description: &str) -> Value {
    json!({"tool": {
        "name": name,
        "description": description,
        "input-schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    }})
}

async fn key_for(host: &TestHost, plugins: &[&str]) -> String {
    let issued = host
        .post(
            "/v1/api-keys",
            &json!({"name": "agent", "plugins": plugins}),
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
