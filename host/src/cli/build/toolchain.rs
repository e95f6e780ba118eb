//! The toolchains `junction build` installs for itself, pinned, into a
//! cache shared by every project (`$JUNCTION_TOOLCHAIN_CACHE`, else
//! `$XDG_CACHE_HOME/junction`, else `~/.cache/junction`): componentize-py
//! from PyPI in a virtual environment, componentize-js and rolldown from
//! npm. Also writes the files every build of this `junction` shares — the
//! WIT contract and the Python and JavaScript SDKs it was built with — so a
//! project outside this repository builds against the same contract.
//!
//! An installation happens under a lock file and is marked complete only
//! at its end, so concurrent builds wait for one install and an
//! interrupted one is redone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::BuildError;

/// The environment variable that overrides the cache folder.
pub const CACHE_ENV: &str = "JUNCTION_TOOLCHAIN_CACHE";

/// The Python toolchain: componentize-py from PyPI.
pub const PYTHON_TOOLCHAIN: &str = "componentize-py==0.25.1";
/// The JavaScript toolchain: componentize-js and the bundler, from npm.
pub const JS_TOOLCHAIN: [(&str, &str); 2] = [
    ("@bytecodealliance/componentize-js", "0.23.0"),
    ("rolldown", "1.3.4"),
];

const WIT: &str = include_str!("../../../../wit/plugin.wit");

const PYTHON_SDK: [(&str, &str); 8] = [
    (
        "__init__.py",
        include_str!("../../../../sdk/python/src/junction_sdk/__init__.py"),
    ),
    (
        "connections.py",
        include_str!("../../../../sdk/python/src/junction_sdk/connections.py"),
    ),
    (
        "errors.py",
        include_str!("../../../../sdk/python/src/junction_sdk/errors.py"),
    ),
    (
        "event.py",
        include_str!("../../../../sdk/python/src/junction_sdk/event.py"),
    ),
    (
        "http.py",
        include_str!("../../../../sdk/python/src/junction_sdk/http.py"),
    ),
    (
        "kv.py",
        include_str!("../../../../sdk/python/src/junction_sdk/kv.py"),
    ),
    (
        "log.py",
        include_str!("../../../../sdk/python/src/junction_sdk/log.py"),
    ),
    (
        "py.typed",
        include_str!("../../../../sdk/python/src/junction_sdk/py.typed"),
    ),
];

const JS_SDK: &str = include_str!("../../../../sdk/js/index.js");
const JS_DRIVER: &str = include_str!("componentize.mjs");

/// The cache folder.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("junction");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("junction"),
        None => std::env::temp_dir().join("junction-cache"),
    }
}

fn create_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Write {
        path: dir.display().to_string(),
        source,
    })
}

/// Holds `<dir>.lock` until dropped.
fn lock(dir: &Path) -> Result<File, BuildError> {
    // Appended, not `with_extension`: `componentize-py-0.25.1` would lose its `.1`.
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let file = File::create(&path).map_err(|source| BuildError::Write {
        path: path.display().to_string(),
        source,
    })?;
    file.lock().map_err(|source| BuildError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(file)
}

const COMPLETE: &str = ".junction-complete";

/// Runs `install` into `dir` unless a complete installation is there.
fn installed(
    dir: &Path,
    install: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let _lock = lock(dir)?;
    if dir.join(COMPLETE).is_file() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| BuildError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    install(dir)?;
    std::fs::write(dir.join(COMPLETE), b"").map_err(|source| BuildError::Write {
        path: dir.display().to_string(),
        source,
    })
}

/// Runs an installer, its output on our standard error.
fn run_installer(
    mut command: Command,
    what: &'static str,
    dir: &Path,
    needs: &'static str,
) -> Result<(), BuildError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|source| BuildError::Spawn {
            tool: program,
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Install {
            what,
            dir: dir.display().to_string(),
            needs,
        })
    }
}

/// The `python3` that creates the toolchain's virtual environment.
fn python() -> std::ffi::OsString {
    std::env::var_os("JUNCTION_PYTHON").unwrap_or_else(|| "python3".into())
}

/// The virtual environment with componentize-py, installed on first use.
pub fn python_toolchain() -> Result<PathBuf, BuildError> {
    let version = PYTHON_TOOLCHAIN.replace("==", "-");
    let dir = cache_root().join(version);
    installed(&dir, |dir| {
        eprintln!(
            "installing {PYTHON_TOOLCHAIN} into {} (once)",
            dir.display()
        );
        let mut venv = Command::new(python());
        venv.args(["-m", "venv"]).arg(dir);
        run_installer(
            venv,
            "a Python virtual environment",
            dir,
            "python3 with venv",
        )?;
        let mut pip = Command::new(dir.join("bin").join("pip"));
        pip.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYTHON_TOOLCHAIN,
        ]);
        run_installer(pip, "componentize-py", dir, "pip")
    })?;
    Ok(dir)
}

/// Installs a Python project's own dependencies (pure Python packages)
/// into `target` with the toolchain's pip.
pub fn pip_install_into(
    toolchain: &Path,
    requirements: &[String],
    target: &Path,
) -> Result<(), BuildError> {
    let mut pip = Command::new(toolchain.join("bin").join("pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--upgrade",
        "--target",
    ])
    .arg(target)
    .args(requirements);
    run_installer(pip, "the project's dependencies", target, "pip")
}

/// The npm folder with componentize-js and rolldown, installed on first use.
pub fn js_toolchain() -> Result<PathBuf, BuildError> {
    let name = format!("componentize-js-{}", JS_TOOLCHAIN[0].1);
    let dir = cache_root().join(name);
    installed(&dir, |dir| {
        eprintln!(
            "installing componentize-js {} and rolldown {} into {} (once)",
            JS_TOOLCHAIN[0].1,
            JS_TOOLCHAIN[1].1,
            dir.display()
        );
        create_dir(dir)?;
        let dependencies: serde_json::Map<String, serde_json::Value> = JS_TOOLCHAIN
            .iter()
            .map(|(name, version)| ((*name).to_owned(), (*version).into()))
            .collect();
        let package = serde_json::json!({
            "name": "junction-js-toolchain",
            "private": true,
            "type": "module",
            "dependencies": dependencies,
        });
        let path = dir.join("package.json");
        std::fs::write(&path, package.to_string()).map_err(|source| BuildError::Write {
            path: path.display().to_string(),
            source,
        })?;
        let mut npm = Command::new("npm");
        npm.current_dir(dir)
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"]);
        run_installer(npm, "componentize-js", dir, "node and npm")
    })?;
    Ok(dir)
}

/// Writes `files` into a folder named by their digest under the cache,
/// once; answers the folder.
fn shared_files(kind: &str, files: &[(&str, &str)]) -> Result<PathBuf, BuildError> {
    let mut digest = Sha256::new();
    for (name, text) in files {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(text.as_bytes());
        digest.update([0]);
    }
    let id = hex::encode(&digest.finalize()[..8]);
    let dir = cache_root().join(format!("{kind}-{id}"));
    installed(&dir, |dir| {
        create_dir(dir)?;
        for (name, text) in files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            std::fs::write(&path, text).map_err(|source| BuildError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    })?;
    Ok(dir)
}

/// The folder holding `plugin.wit`, the contract this `junction` runs.
pub fn wit_dir() -> Result<PathBuf, BuildError> {
    shared_files("wit", &[("plugin.wit", WIT)])
}

/// A folder to put on Python's path: it holds the `junction_sdk` package.
pub fn python_sdk_path() -> Result<PathBuf, BuildError> {
    let files: Vec<(String, &str)> = PYTHON_SDK
        .iter()
        .map(|(name, text)| (format!("junction_sdk/{name}"), *text))
        .collect();
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    shared_files("python-sdk", &borrowed)
}

/// The JavaScript SDK's module file and the build driver script.
pub fn js_files() -> Result<(PathBuf, PathBuf), BuildError> {
    let dir = shared_files(
        "js-sdk",
        &[
            ("junction-sdk/index.js", JS_SDK),
            ("componentize.mjs", JS_DRIVER),
        ],
    )?;
    Ok((
        dir.join("junction-sdk").join("index.js"),
        dir.join("componentize.mjs"),
    ))
}
