//! The `junction` binary end to end: build, run, connections, and bad input.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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

/// `junction serve` as a child process on a free port of 127.0.0.1.
struct ServeChild {
    child: Child,
    url: String,
    data_dir: String,
}

impl ServeChild {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("JUNCTION_MASTER_KEY")
            .env_remove("JUNCTION_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn junction serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("junction serve exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("junction listening on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServeChild {
            child,
            url,
            data_dir: data_dir.to_str().expect("path").to_owned(),
        }
    }

    /// Runs a client command against this server.
    fn client(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &self.url, "--data-dir", &self.data_dir]);
        junction(&all, stdin)
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        self.child.wait().expect("wait")
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let server = ServeChild::start(data.path());
    let secret = "sk_live_cli_secret_4242";
    let add = |link: &str, service: &str, secret: &str| {
        server.client(
            &["connection", "add", link, "--service", service],
            Some(secret),
        )
    };
    let out = server.client(
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
        ],
        Some(&format!("{secret}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.client(&["connection", "list", "--json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed[0]["link_name"], "stripe");
    assert_eq!(listed[0]["has_secret"], true);
    assert!(!text(&out.stdout).contains(secret));
    let out = server.client(&["connection", "show", "stripe"], None);
    assert!(text(&out.stdout).contains(".connection(\"stripe\")"));
    let out = server.client(&["service", "show", "stripe", "--json"], None);
    let service: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(service["auth_type"], "api-key");

    // Bad input leaves the store as it was.
    assert_fails_with(
        &add("Bad-Name", "stripe", "x"),
        "link name `Bad-Name` is invalid",
    );
    assert_fails_with(&add("stripe", "stripe", "again"), "already exists");
    assert_fails_with(&add("empty", "stripe", ""), "secret is empty");
    assert_fails_with(&add("x", "nope", "k"), "give --auth");

    // OAuth: a catalog service configured with a client id and a secret on
    // standard input, and a connection created disconnected.
    let out = server.client(
        &[
            "service",
            "add",
            "--catalog",
            "google",
            "--client-id",
            "123.apps",
            "--client-secret-stdin",
        ],
        Some("google-client-secret-99\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("client secret stored encrypted"));
    let out = server.client(
        &["connection", "create", "gmail", "--service", "google"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("disconnected"),
        "{}",
        text(&out.stdout)
    );
    let out = server.client(&["service", "list"], None);
    assert!(
        text(&out.stdout).contains("configured"),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains("google-client-secret-99"));
    let out = server.client(&["connection", "refresh", "gmail"], None);
    assert_fails_with(&out, "no refresh token");

    let out = server.client(&["connection", "remove", "stripe"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.client(&["connection", "remove", "stripe"], None);
    assert_fails_with(&out, "no connection named `stripe`");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    let redb = std::fs::read(data.path().join("junction.redb")).expect("redb");
    assert!(!redb.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

/// The README's quickstart: serve, deploy, invoke, list; then token rotation
/// while the server runs, and a graceful stop.
#[test]
fn serve_deploy_invoke_and_rotate_the_token() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServeChild::start(data.path());
    let token_file = data.path().join("admin-token");
    let first_token = std::fs::read_to_string(&token_file).expect("admin-token written");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let hello = workspace().join("plugins/hello");
    let target_dir = plugin_target_dir();
    let out = server.client(
        &[
            "deploy",
            hello.to_str().expect("path"),
            "--target-dir",
            &target_dir,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("deployed hello version 1"), "{stdout}");
    assert!(stdout.contains("sha256"), "{stdout}");

    let out = server.client(
        &["invoke", "hello", "--event", "-"],
        Some(r#"{"kind": "hello", "payload": {"name": "Ada"}}"#),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ok in"), "{stdout}");
    assert!(stdout.contains("\"Ada\""), "{stdout}");

    let out = server.client(&["executions", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["plugin"], "hello");
    assert_eq!(list[0]["status"], "ok");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let out = server.client(&["logs", &id], None);
    assert!(
        text(&out.stdout).contains("hello received a `hello` event"),
        "{}",
        text(&out.stdout)
    );
    let out = server.client(&["plugins"], None);
    assert!(text(&out.stdout).contains("hello"), "{}", text(&out.stdout));

    // A failed invocation exits non-zero; an unknown plugin names itself.
    let out = server.client(&["invoke", "nope"], None);
    assert_fails_with(&out, "no plugin named `nope`");

    // Rotation while the server holds the store goes through the server.
    let out = server.client(&["token", "rotate"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second_token = std::fs::read_to_string(&token_file).expect("token");
    assert_ne!(first_token, second_token);
    assert!(text(&out.stdout).contains(&second_token));
    let out = junction(
        &["plugins", "--url", &server.url, "--token", &first_token],
        None,
    );
    assert_fails_with(&out, "the admin token is not valid");
    let out = server.client(&["plugins"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    // Stopped: rotation now rewrites the store directly.
    let out = junction(
        &[
            "token",
            "rotate",
            "--data-dir",
            data.path().to_str().expect("path"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(
        std::fs::read_to_string(&token_file).expect("token"),
        second_token
    );
}
