//! The MCP client the tests drive: the official Python `mcp` SDK (PyPI,
//! installed into a cache by scripts/test.sh and named by
//! `JUNCTION_MCP_PYTHON`) running `tests/mcp/client.py` against a host.

use std::process::Command;

use serde_json::Value;

use crate::host::TestHost;

fn python() -> String {
    match std::env::var("JUNCTION_MCP_PYTHON") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "the MCP tests need the Python `mcp` SDK: run ./scripts/test.sh, which installs it into a cache, or set JUNCTION_MCP_PYTHON to a python that has `mcp` installed"
        ),
    }
}

/// Connects to `host`'s `/mcp` with `token` (naming `end_user` in every
/// request's header, when given), lists the tools and makes `call`; each
/// line the client printed, parsed.
pub async fn client(
    host: &TestHost,
    token: &str,
    end_user: Option<&str>,
    call: Option<(&str, Value)>,
) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/client.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .arg(format!("{}/mcp", host.url))
        .arg(token);
    match end_user {
        Some(user) => command.env("JUNCTION_END_USER", user),
        None => command.env_remove("JUNCTION_END_USER"),
    };
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
