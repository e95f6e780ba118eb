//! The `junction` binary end to end: build, run, connections, and bad input.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

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
    let wasm = Path::new(&target_dir).join("wasm32-wasip2/junction-plugin/hello.wasm");
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
    assert_fails_with(&out, "is not a plugin project");
}

/// `junction build`, `run` and `deploy` take a Python or a JavaScript
/// project the way they take a crate.
#[test]
fn build_run_and_deploy_python_and_javascript_plugins() {
    let target_dir = plugin_target_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServeChild::start(data.path());
    for (package, language) in [("hello-py", "Python"), ("hello-js", "JavaScript")] {
        let project = workspace().join("plugins").join(package);
        let project = project.to_str().expect("path");
        let out = junction(&["build", project, "--target-dir", &target_dir], None);
        assert!(out.status.success(), "{package}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("({language}, ")) && stdout.contains("sha256"),
            "{package}: {stdout}"
        );
        assert!(
            stdout.contains("matches the junction:plugin/plugin world"),
            "{package}: {stdout}"
        );
        // The project folder is left as it was: no bytecode caches, no output.
        let leftovers: Vec<String> = walk(Path::new(project))
            .into_iter()
            .filter(|p| p.contains("__pycache__") || p.ends_with(".wasm"))
            .collect();
        assert!(leftovers.is_empty(), "{package}: {leftovers:?}");

        let run_dir = tempfile::tempdir().expect("tempdir");
        let event = run_dir.path().join("event.json");
        std::fs::write(&event, r#"{"kind": "hello", "payload": {"name": "Ada"}}"#).expect("write");
        let out = junction(
            &[
                "run",
                project,
                "--event",
                event.to_str().expect("path"),
                "--data-dir",
                run_dir.path().to_str().expect("path"),
                "--target-dir",
                &target_dir,
            ],
            None,
        );
        assert!(out.status.success(), "{package}: {}", text(&out.stderr));
        let record: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("record is JSON");
        assert_eq!(record["status"], "ok", "{package}: {record}");
        assert_eq!(record["output"]["payload"]["name"], "Ada", "{package}");

        let out = server.client(&["deploy", project, "--target-dir", &target_dir], None);
        assert!(out.status.success(), "{package}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("deployed {package} version 1")),
            "{package}: {}",
            text(&out.stdout)
        );
        let out = server.client(
            &["invoke", package, "--event", "-"],
            Some(r#"{"kind": "hello", "payload": {"name": "Grace"}}"#),
        );
        assert!(out.status.success(), "{package}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("\"Grace\""), "{package}");
    }

    // A project whose manifest is wrong is refused naming the field.
    let broken = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        broken.path().join("package.json"),
        r#"{"name": "broken-js", "junction": {"limits": {"memory-mb": "lots"}}}"#,
    )
    .expect("write");
    let out = junction(&["build", broken.path().to_str().expect("path")], None);
    assert_fails_with(&out, "\"junction\" in package.json");
    assert_fails_with(&out, "memory-mb");
    std::fs::write(
        broken.path().join("pyproject.toml"),
        "[project]\nname = \"broken-py\"\n",
    )
    .expect("write");
    let out = junction(&["build", broken.path().to_str().expect("path")], None);
    assert_fails_with(&out, "has both pyproject.toml and package.json");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// Every file below `dir`, as text.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.display().to_string());
            if path.is_dir() {
                found.extend(walk(&path));
            }
        }
    }
    found
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

    let out = server.deploy_hello();
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

    // Events: follow executions live, send an event, see it delivered.
    let mut tail = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args([
            "events",
            "tail",
            "--url",
            &server.url,
            "--data-dir",
            &server.data_dir,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn events tail");
    let tail_err = common::Lines::of(tail.stderr.take().expect("stderr"));
    let following = tail_err.next("events tail to start following");
    assert!(following.contains("following executions"), "{following}");
    let out = server.client(
        &["event", "send", "hello", "--payload", "-"],
        Some(r#"{"name": "Grace"}"#),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("delivered to 1 plugin"), "{stdout}");
    let event_id = stdout
        .split_whitespace()
        .nth(2)
        .expect("event id")
        .trim_end_matches(';')
        .to_owned();
    let tail_out = common::Lines::of(tail.stdout.take().expect("stdout"));
    let line = tail_out.next("an execution line from events tail");
    assert!(line.contains("hello") && line.contains(" ok "), "{line}");
    let _ = tail.kill();
    let _ = tail.wait();
    let out = server.client(&["event", "show", &event_id], None);
    assert!(
        text(&out.stdout).contains("succeeded"),
        "{}",
        text(&out.stdout)
    );
    let out = server.client(&["triggers"], None);
    assert!(
        text(&out.stdout).contains("hello.m0"),
        "{}",
        text(&out.stdout)
    );
    let out = server.client(&["deliveries", "--state", "dead"], None);
    assert!(
        text(&out.stdout).contains("no deliveries"),
        "{}",
        text(&out.stdout)
    );
    let out = server.client(&["event", "send", "Bad Kind"], None);
    assert_fails_with(&out, "Bad Kind");

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

#[test]
fn serve_refuses_a_missing_or_wrong_master_key_and_key_rotate_works_online_and_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("path");
    // A secret sealed under the key file.
    {
        let server = ServeChild::start(&data);
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
            Some("sk_live_rotated_key_4242\n"),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        // Online: the running server re-seals under a new key.
        let before = std::fs::read_to_string(data.join("master.key")).expect("key file");
        let out = server.client(&["key", "rotate"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("re-sealed"),
            "{}",
            text(&out.stdout)
        );
        let after = std::fs::read_to_string(data.join("master.key")).expect("key file");
        assert_ne!(before, after, "the key file holds the new key");
    }
    // Offline, with the server stopped.
    let out = junction(&["key", "rotate", "--data-dir", data_arg], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 secrets re-sealed"),
        "{}",
        text(&out.stdout)
    );

    // A wrong key from the environment: refused, naming both key ids.
    let wrong = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg])
        .env("JUNCTION_MASTER_KEY", "22".repeat(32))
        .output()
        .expect("serve");
    assert_fails_with(&wrong, "is not the one that sealed this data directory");

    // The key file gone: refused, and no new key is made.
    let saved = std::fs::read(data.join("master.key")).expect("key file");
    std::fs::remove_file(data.join("master.key")).expect("remove");
    let missing = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_arg])
        .env_remove("JUNCTION_MASTER_KEY")
        .output()
        .expect("serve");
    assert_fails_with(&missing, "the master key is missing");
    assert!(!data.join("master.key").exists());
    std::fs::write(data.join("master.key"), saved).expect("restore");
    let server = ServeChild::start(&data);
    let out = server.client(&["connection", "show", "stripe"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn boolean_environment_variables_take_the_usual_spellings() {
    for value in ["1", "true", "yes", "on"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(env!("CARGO_BIN_EXE_junction"))
            .args(["run", "/nonexistent-plugin.wasm", "--event", "-"])
            .arg("--data-dir")
            .arg(dir.path())
            .env("JUNCTION_ALLOW_PRIVATE_NETWORK", value)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("invalid value"),
            "JUNCTION_ALLOW_PRIVATE_NETWORK={value}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["serve", "--listen", "not-an-address"])
        .env("JUNCTION_ALLOW_PRIVATE_NETWORK", "1")
        .output()
        .expect("serve");
    assert_fails_with(&out, "not-an-address");
}

/// `junction serve` keeps its memory off transparent huge pages whatever
/// the machine's mode (the kernel reports the process's flag), while a
/// client command, whose children would inherit it, is left as this test
/// process is.
#[cfg(target_os = "linux")]
#[test]
fn serve_declines_transparent_huge_pages_and_clients_do_not() {
    fn thp_enabled(pid: u32) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .unwrap_or_else(|| panic!("no THP_enabled line in /proc/{pid}/status:\n{status}"))
            .trim()
            .to_owned()
    }
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServeChild::start(data.path());
    assert_eq!(thp_enabled(server.child.id()), "0");

    // A client waiting on its standard input is still running when read.
    let mut client = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["invoke", "hello", "--event", "-", "--url", &server.url])
        .args(["--data-dir", &server.data_dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a client");
    let seen = thp_enabled(client.id());
    drop(client.stdin.take());
    client.wait().expect("client ends");
    assert_eq!(seen, thp_enabled(std::process::id()));
}
