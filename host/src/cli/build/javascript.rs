//! JavaScript plugins: the project's entry module (`"main"` in
//! `package.json`, else `index.js` or `src/index.js`) bundled with rolldown
//! and made a component with componentize-js, by a small Node script this
//! `junction` ships. The project's own npm dependencies, when it has any,
//! are installed with `npm install` first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BuildError, plugin_name, read_project_file, toolchain};

/// Builds the project whose `package.json` is `project_file` into
/// `out_dir`; answers the plugin's name and the component's path.
pub(super) fn build(
    dir: &Path,
    project_file: &Path,
    out_dir: &Path,
) -> Result<(String, PathBuf), BuildError> {
    let text = read_project_file(project_file)?;
    let package: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BuildError::Project {
            path: project_file.display().to_string(),
            message: format!("not valid JSON: {e}"),
        })?;
    let name = plugin_name(project_file, package["name"].as_str())?;
    let entry = match package["main"].as_str() {
        Some(main) => dir.join(main),
        None => ["index.js", "src/index.js"]
            .into_iter()
            .map(|candidate| dir.join(candidate))
            .find(|path| path.is_file())
            .unwrap_or_else(|| dir.join("index.js")),
    };
    if !entry.is_file() {
        return Err(BuildError::Project {
            path: project_file.display().to_string(),
            message: format!(
                "the entry module {} is missing; it exports `handle = exportHandler(fn)` (name it in \"main\")",
                entry.display()
            ),
        });
    }
    let has_own_dependencies = package["dependencies"]
        .as_object()
        .is_some_and(|deps| deps.keys().any(|k| k != "junction-sdk"));
    if has_own_dependencies && !dir.join("node_modules").is_dir() {
        let mut npm = Command::new("npm");
        npm.current_dir(dir)
            .args(["install", "--omit=dev", "--no-audit", "--no-fund"])
            .stdout(Stdio::from(std::io::stderr()));
        let status = npm.status().map_err(|source| BuildError::Spawn {
            tool: "npm".into(),
            source,
        })?;
        if !status.success() {
            return Err(BuildError::ToolFailed {
                tool: "npm install".into(),
            });
        }
    }

    let toolchain = toolchain::js_toolchain()?;
    let wit = toolchain::wit_dir()?.join("plugin.wit");
    let (sdk, driver) = toolchain::js_files()?;
    std::fs::create_dir_all(out_dir).map_err(|source| BuildError::Write {
        path: out_dir.display().to_string(),
        source,
    })?;
    let module = name.replace('-', "_");
    let out = out_dir.join(format!("{module}.wasm"));
    let bundle = out_dir.join(format!("{module}.bundle.js"));
    let arguments = serde_json::json!({
        "toolchain": toolchain,
        "entry": entry,
        "sdk": sdk,
        "wit": wit,
        "bundle": bundle,
        "out": out,
    });
    let status = Command::new("node")
        .arg(&driver)
        .arg(arguments.to_string())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|source| BuildError::Spawn {
            tool: "node".into(),
            source,
        })?;
    if !status.success() {
        return Err(BuildError::ToolFailed {
            tool: "componentize-js".into(),
        });
    }
    Ok((name, out))
}
