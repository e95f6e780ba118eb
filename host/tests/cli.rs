//! The `junction` binary end to end: build, run, connections, and bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

fn junction(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(args)
        .env_remove("JUNCTION_MASTER_KEY")
        .env_remove("JUNCTION_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn junction");
    if let Some(mut pipe) = child.stdin.take()
        && let Some(text) = stdin
    {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("junction output")
}

/// `junction run <wasm> --event <event> --data-dir <data>`.
fn run_component(wasm: &Path, event: &str, data: &Path, stdin: Option<&str>) -> Output {
    let args = [
        "run",
        wasm.to_str().expect("path"),
        "--event",
        event,
        "--data-dir",
        data.to_str().expect("path"),
    ];
    junction(&args, stdin)
}

/// `junction connection add <link> --service <service>` with `secret` on stdin.
fn add_connection(data_dir: &str, link: &str, service: &str, secret: &str) -> Output {
    let args = [
        "connection",
        "add",
        link,
        "--service",
        service,
        "--data-dir",
        data_dir,
    ];
    junction(&args, Some(secret))
}

/// Asserts the command failed and said `needle` on stderr.
fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn plugin_target_dir() -> String {
    std::env::var("JUNCTION_PLUGIN_TARGET_DIR")
        .unwrap_or_else(|_| workspace().join("target/plugins").display().to_string())
}

#[test]
fn build_then_run_hello() {
    let hello = workspace().join("plugins/hello");
    let target_dir = plugin_target_dir();
    let out = junction(
        &[
            "build",
            hello.to_str().expect("path"),
            "--target-dir",
            &target_dir,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("hello.wasm") && stdout.contains("sha256"),
        "{stdout}"
    );
    assert!(
        stdout.contains("matches the junction:plugin/plugin world"),
        "{stdout}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let event = data.path().join("event.json");
    std::fs::write(&event, r#"{"kind": "hello", "payload": {"name": "Ada"}}"#).expect("write");
    let out = junction(
        &[
            "run",
            hello.to_str().expect("path"),
            "--event",
            event.to_str().expect("path"),
            "--data-dir",
            data.path().to_str().expect("path"),
            "--target-dir",
            &target_dir,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("record is JSON");
    assert_eq!(record["status"], "ok");
    assert_eq!(record["output"]["payload"]["name"], "Ada");
    assert_eq!(
        record["logs"][0]["message"],
        "hello received a `hello` event"
    );

    // The event can come from standard input too.
    let wasm = Path::new(&target_dir).join("wasm32-wasip2/release/hello.wasm");
    let stdin_event = r#"{"kind": "hello", "payload": [1, 2]}"#;
    let out = run_component(&wasm, "-", data.path(), Some(stdin_event));
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Bad input: an event that is not JSON, a file that is not wasm, a core
    // module, a folder that is not a crate.
    let event = event.to_str().expect("path");
    let out = run_component(&wasm, "-", data.path(), Some("not json"));
    assert_fails_with(&out, "is not JSON");
    let junk = data.path().join("junk.wasm");
    std::fs::write(&junk, b"junk").expect("write");
    assert_fails_with(
        &run_component(&junk, event, data.path(), None),
        "not a WebAssembly file",
    );
    let core = data.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let out = run_component(&core, event, data.path(), None);
    assert_fails_with(&out, "core WebAssembly module, not a component");
    let out = junction(&["build", data.path().to_str().expect("path")], None);
    assert_fails_with(&out, "has no Cargo.toml");
}

#[test]
fn connections_from_stdin_never_echo_the_secret() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_str().expect("path");
    let secret = "sk_live_cli_secret_4242";
    let out = junction(
        &[
            "connection",
            "add",
            "stripe",
            "--service",
            "stripe",
            "--auth",
            "api-key",
            "--base-url",
            "https://api.stripe.com/v1",
            "--data-dir",
            dir,
        ],
        Some(&format!("{secret}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = junction(&["connection", "list", "--json", "--data-dir", dir], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed[0]["link_name"], "stripe");
    assert_eq!(listed[0]["has_secret"], true);
    assert!(!text(&out.stdout).contains(secret));

    // Bad input leaves the store as it was.
    let out = add_connection(dir, "Bad-Name", "stripe", "x");
    assert_fails_with(&out, "link name `Bad-Name` is invalid");
    let out = add_connection(dir, "stripe", "stripe", "again");
    assert_fails_with(&out, "already exists");
    let out = add_connection(dir, "empty", "stripe", "");
    assert_fails_with(&out, "secret is empty");
    let out = add_connection(dir, "x", "nope", "k");
    assert_fails_with(&out, "give --auth");

    let out = junction(&["connection", "remove", "stripe", "--data-dir", dir], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = junction(&["connection", "remove", "stripe", "--data-dir", dir], None);
    assert_fails_with(&out, "no connection named `stripe`");

    let redb = std::fs::read(data.path().join("junction.redb")).expect("redb");
    assert!(!redb.windows(secret.len()).any(|w| w == secret.as_bytes()));
}
