//! `junction build`: recognises a plugin project's language by its project
//! file (`Cargo.toml`, `pyproject.toml`, `package.json`), builds it with
//! that language's toolchain (cargo; componentize-py; rolldown and
//! componentize-js, the latter two installed into a cache on first use),
//! reads the manifest from the same file and checks the component against
//! the `plugin` world.

mod javascript;
mod python;
pub mod rust;
mod toolchain;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use junction_core::manifest::{Manifest, ManifestError, ManifestSource};
use junction_core::{Language, validate_plugin_name};
use junction_runtime::LoadError;

pub use rust::WASM_TARGET;
pub use toolchain::{CACHE_ENV, JS_TOOLCHAIN, PYTHON_TOOLCHAIN};

/// A built and checked plugin.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// The project's name (the plugin's default name).
    pub name: String,
    /// The language it was written in, when known.
    pub language: Option<Language>,
    /// Where the component is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, hex.
    pub sha256: String,
    /// The manifest from the project file.
    pub manifest: Manifest,
}

/// What can go wrong building a plugin.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{0} is not a plugin project: it has none of Cargo.toml (Rust), pyproject.toml (Python) or package.json (JavaScript)"
    )]
    NotAProject(String),
    #[error("{dir} has both {first} and {second}; a plugin project has one")]
    Ambiguous {
        dir: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: String,
        source: std::io::Error,
    },
    #[error(
        "cargo build failed (see its output above); if it says the {WASM_TARGET} target is missing, run `rustup target add {WASM_TARGET}`"
    )]
    Failed,
    #[error("{tool} failed (see its output above)")]
    ToolFailed { tool: String },
    #[error(
        "installing {what} into {dir} failed (see the output above); it needs {needs} and the package registry"
    )]
    Install {
        what: &'static str,
        dir: String,
        needs: &'static str,
    },
    #[error("cargo built no .wasm for {0}; is it a `cdylib` crate?")]
    NoArtifact(String),
    #[error("{path}: {message}")]
    Project { path: String, message: String },
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}")]
    Invalid { path: String, source: LoadError },
}

/// Where a build puts its output: the caller's target directory, or the
/// project's own `target/`.
fn output_dir(dir: &Path, target_dir: Option<&Path>) -> PathBuf {
    match target_dir {
        Some(target_dir) => target_dir.join("junction"),
        None => dir.join("target").join("junction"),
    }
}

/// The language of the project in `dir`, told by its project file.
pub fn project_language(dir: &Path) -> Result<Language, BuildError> {
    let present: Vec<ManifestSource> = ManifestSource::ALL
        .into_iter()
        .filter(|source| dir.join(source.file_name()).is_file())
        .collect();
    match present.as_slice() {
        [] => Err(BuildError::NotAProject(dir.display().to_string())),
        [only] => Ok(Language::of_source(*only)),
        // A Rust crate may carry a package.json for its tooling, and so on:
        // more than one is ambiguous, and the error says which.
        [first, second, ..] => Err(BuildError::Ambiguous {
            dir: dir.display().to_string(),
            first: first.file_name(),
            second: second.file_name(),
        }),
    }
}

/// Builds the plugin project in `dir` (Rust in the size-optimised `junction-plugin` profile) and checks
/// the result. `target_dir` overrides where the output goes (cargo's
/// target directory for Rust).
pub fn build_plugin(dir: &Path, target_dir: Option<&Path>) -> Result<BuiltPlugin, BuildError> {
    let language = project_language(dir)?;
    let project_file = dir.join(language.manifest_source().file_name());
    let manifest = Manifest::from_project_file(language.manifest_source(), &project_file)?;
    let (name, path) = match language {
        Language::Rust => rust::build(dir, &project_file, target_dir)?,
        Language::Python => python::build(dir, &project_file, &output_dir(dir, target_dir))?,
        Language::JavaScript => {
            javascript::build(dir, &project_file, &output_dir(dir, target_dir))?
        }
    };
    let checked = check_file(&path)?;
    Ok(BuiltPlugin {
        name,
        language: Some(language),
        manifest,
        ..checked
    })
}

/// The text of a Python or JavaScript project's file.
fn read_project_file(project_file: &Path) -> Result<String, BuildError> {
    std::fs::read_to_string(project_file).map_err(|source| BuildError::Read {
        path: project_file.display().to_string(),
        source,
    })
}

/// A Python or JavaScript project's name as a plugin name: it must already
/// be one, so the name people see is the name they wrote.
fn plugin_name(project_file: &Path, name: Option<&str>) -> Result<String, BuildError> {
    let name = name.ok_or_else(|| BuildError::Project {
        path: project_file.display().to_string(),
        message: "the project has no name; it becomes the plugin's name".into(),
    })?;
    validate_plugin_name(name).map_err(|message| BuildError::Project {
        path: project_file.display().to_string(),
        message: format!("the project's name `{name}` cannot be a plugin's name: {message}"),
    })?;
    Ok(name.to_owned())
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
        language: junction_runtime::component_language(&bytes),
        path: path.to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        manifest: Manifest::default(),
    })
}
