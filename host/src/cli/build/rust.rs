//! Rust plugins: `cargo build --target wasm32-wasip2` in Junction's own
//! size-optimised profile, reading cargo's JSON messages for the crate's
//! `.wasm`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BuildError;

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The cargo profile Rust plugins are built in. It is defined on the
/// command line (`--config`), so a project needs nothing in its own
/// `Cargo.toml`, and a workspace's `release` profile stays the host's
/// (optimised for speed) while plugins stay small: a component is
/// compiled once at upload, so its size costs more than its speed.
pub const PLUGIN_PROFILE: &str = "junction-plugin";

/// The arguments that define and select [`PLUGIN_PROFILE`] for `cargo
/// build`.
pub fn profile_args() -> Vec<String> {
    let settings = [
        ("inherits", "\"release\""),
        ("opt-level", "\"s\""),
        ("lto", "true"),
        ("codegen-units", "1"),
        ("strip", "true"),
        ("debug", "false"),
    ];
    let mut args = Vec::with_capacity(settings.len() * 2 + 2);
    for (key, value) in settings {
        args.push("--config".to_owned());
        args.push(format!("profile.{PLUGIN_PROFILE}.{key}={value}"));
    }
    args.push("--profile".to_owned());
    args.push(PLUGIN_PROFILE.to_owned());
    args
}

/// Builds the crate whose `Cargo.toml` is `manifest_path`; answers the
/// package's name and the component's path.
pub(super) fn build(
    dir: &Path,
    manifest_path: &Path,
    target_dir: Option<&Path>,
) -> Result<(String, PathBuf), BuildError> {
    let canonical = manifest_path
        .canonicalize()
        .map_err(|source| BuildError::Read {
            path: manifest_path.display().to_string(),
            source,
        })?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--target",
            WASM_TARGET,
            "--message-format",
            "json-render-diagnostics",
        ])
        .args(profile_args())
        .arg("--manifest-path")
        .arg(&canonical)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target_dir) = target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    let mut child = command.spawn().map_err(|source| BuildError::Spawn {
        tool: "cargo".into(),
        source,
    })?;
    let mut artifact: Option<(String, PathBuf)> = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact" {
                continue;
            }
            let same_crate = message["manifest_path"]
                .as_str()
                .and_then(|p| Path::new(p).canonicalize().ok())
                .is_some_and(|p| p == canonical);
            if !same_crate {
                continue;
            }
            let wasm = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"));
            if let Some(wasm) = wasm {
                let name = message["target"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('_', "-");
                artifact = Some((name, PathBuf::from(wasm)));
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        tool: "cargo".into(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed);
    }
    artifact.ok_or_else(|| BuildError::NoArtifact(dir.display().to_string()))
}
