//! `junction build`: compiles a plugin crate for `wasm32-wasip2` with cargo
//! and checks the component against the `plugin` world.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use junction_core::manifest::{Manifest, ManifestError};
use junction_runtime::LoadError;

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A built and checked plugin.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// The package name (the plugin's default name).
    pub name: String,
    /// Where the component is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, hex.
    pub sha256: String,
    /// The manifest from `Cargo.toml`.
    pub manifest: Manifest,
}

/// What can go wrong building a plugin.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0} is not a plugin crate: it has no Cargo.toml")]
    NotACrate(String),
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
    #[error(
        "cargo build failed (see its output above); if it says the {WASM_TARGET} target is missing, run `rustup target add {WASM_TARGET}`"
    )]
    Failed,
    #[error("cargo built no .wasm for {0}; is it a `cdylib` crate?")]
    NoArtifact(String),
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}")]
    Invalid { path: String, source: LoadError },
}

/// Builds the plugin crate in `dir` (release profile) and checks the result.
/// `target_dir` overrides cargo's target directory.
pub fn build_plugin(dir: &Path, target_dir: Option<&Path>) -> Result<BuiltPlugin, BuildError> {
    let manifest_path = dir.join("Cargo.toml");
    if !manifest_path.is_file() {
        return Err(BuildError::NotACrate(dir.display().to_string()));
    }
    let manifest = Manifest::from_cargo_toml(&manifest_path)?;
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
            "--release",
            "--target",
            WASM_TARGET,
            "--message-format",
            "json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&canonical)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target_dir) = target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    let mut child = command.spawn().map_err(BuildError::Cargo)?;
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
                    .to_owned();
                artifact = Some((name, PathBuf::from(wasm)));
            }
        }
    }
    let status = child.wait().map_err(BuildError::Cargo)?;
    if !status.success() {
        return Err(BuildError::Failed);
    }
    let (name, path) = artifact.ok_or_else(|| BuildError::NoArtifact(dir.display().to_string()))?;
    let checked = check_file(&path)?;
    Ok(BuiltPlugin {
        name: name.replace('_', "-"),
        manifest,
        ..checked
    })
}

/// Reads a component file and checks it against the `plugin` world.
pub fn check_file(path: &Path) -> Result<BuiltPlugin, BuildError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| BuildError::Read {
        path: shown.clone(),
        source,
    })?;
    junction_runtime::validate_component(&bytes).map_err(|source| BuildError::Invalid {
        path: shown,
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_default();
    Ok(BuiltPlugin {
        name,
        path: path.to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        manifest: Manifest::default(),
    })
}
