//! Helpers shared by the binary's end-to-end tests: running `junction`,
//! and `junction serve` as a child process.
// Each test binary uses a different subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

pub fn junction(args: &[&str], stdin: Option<&str>) -> Output {
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
pub fn run_component(wasm: &Path, event: &str, data: &Path, stdin: Option<&str>) -> Output {
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
pub struct ServeChild {
    pub child: Child,
    pub url: String,
    pub data_dir: String,
}

/// How long a test waits for one line from a child process.
pub const LINE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A child's output read line by line on a thread, so a test waits for a
/// line with a deadline instead of blocking for ever on a silent child.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub fn of(reader: impl std::io::Read + Send + 'static) -> Self {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(receive)
    }

    /// The next line; panics, naming `what`, after [`LINE_WAIT`] or at the end.
    pub fn next(&self, what: &str) -> String {
        match self.0.recv_timeout(LINE_WAIT) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("waited {LINE_WAIT:?} for {what}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the output ended before {what}")
            }
        }
    }
}

impl ServeChild {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts it with extra `serve` flags.
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_junction"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .env_remove("JUNCTION_MASTER_KEY")
            .env_remove("JUNCTION_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn junction serve");
        let stdout = child.stdout.take().expect("stdout");
        // Read on a thread of its own, which keeps draining stdout so the
        // server never blocks on a full pipe.
        let lines = Lines::of(stdout);
        let url = loop {
            let line = lines.next("junction serve to say where it listens");
            if let Some(rest) = line.strip_prefix("junction listening on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        ServeChild {
            child,
            url,
            data_dir: data_dir.to_str().expect("path").to_owned(),
        }
    }

    /// Runs a client command against this server.
    pub fn client(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &self.url, "--data-dir", &self.data_dir]);
        junction(&all, stdin)
    }

    /// `junction deploy plugins/hello`, which must succeed.
    pub fn deploy_hello(&self) -> Output {
        let hello = workspace().join("plugins/hello");
        let target_dir = plugin_target_dir();
        let out = self.client(
            &[
                "deploy",
                hello.to_str().expect("path"),
                "--target-dir",
                &target_dir,
            ],
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
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
pub fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn plugin_target_dir() -> String {
    std::env::var("JUNCTION_PLUGIN_TARGET_DIR")
        .unwrap_or_else(|_| workspace().join("target/plugins").display().to_string())
}
