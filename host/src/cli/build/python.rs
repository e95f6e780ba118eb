//! Python plugins: componentize-py over the project's module, with the
//! Python SDK this `junction` ships and the project's own dependencies
//! (from `[project].dependencies`, installed with pip) on its path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BuildError, plugin_name, read_project_file, toolchain};

/// The SDK's distribution name, supplied by the build rather than pip.
const SDK_DISTRIBUTION: &str = "junction-sdk";

/// Builds the project whose `pyproject.toml` is `project_file` into
/// `out_dir`; answers the plugin's name and the component's path.
pub(super) fn build(
    dir: &Path,
    project_file: &Path,
    out_dir: &Path,
) -> Result<(String, PathBuf), BuildError> {
    let text = read_project_file(project_file)?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| BuildError::Project {
        path: project_file.display().to_string(),
        message: e.to_string(),
    })?;
    let project = doc.get("project");
    let name = plugin_name(
        project_file,
        project.and_then(|p| p.get("name")).and_then(|n| n.as_str()),
    )?;
    let module = name.replace('-', "_");
    let module_path = [dir.join("src"), dir.to_owned()]
        .into_iter()
        .flat_map(|d| [d.join(&module), d.join(format!("{module}.py"))])
        .find(|p| p.is_dir() || p.is_file())
        .ok_or_else(|| BuildError::Project {
            path: project_file.display().to_string(),
            message: format!(
                "the project `{name}` needs its module: src/{module}/__init__.py, {module}/__init__.py or {module}.py, defining `WitWorld = junction_sdk.export(handle)`"
            ),
        })?;
    let requirements: Vec<String> = project
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .filter(|r| !is_sdk_requirement(r))
        .map(str::to_owned)
        .collect();

    let toolchain = toolchain::python_toolchain()?;
    let wit = toolchain::wit_dir()?;
    let sdk = toolchain::python_sdk_path()?;
    std::fs::create_dir_all(out_dir).map_err(|source| BuildError::Write {
        path: out_dir.display().to_string(),
        source,
    })?;
    // componentize-py runs the module to snapshot it, and CPython writes
    // its bytecode caches beside the sources: build from a copy, so the
    // project folder stays as its author left it.
    let staged = out_dir.join(format!("{name}-python-src"));
    stage_module(&module_path, &staged)?;
    let mut paths = vec![staged, sdk];
    if !requirements.is_empty() {
        let deps = out_dir.join(format!("{name}-python-deps"));
        toolchain::pip_install_into(&toolchain, &requirements, &deps)?;
        paths.push(deps);
    }
    let out = out_dir.join(format!("{module}.wasm"));
    let mut command = Command::new(toolchain.join("bin").join("componentize-py"));
    command
        .arg("--wit-path")
        .arg(&wit)
        .args(["--world", "plugin", "componentize"]);
    for path in &paths {
        command.arg("--python-path").arg(path);
    }
    command
        .arg(&module)
        .arg("--output")
        .arg(&out)
        // Its progress goes with cargo's, on standard error.
        .stdout(Stdio::from(std::io::stderr()));
    let status = command.status().map_err(|source| BuildError::Spawn {
        tool: "componentize-py".into(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::ToolFailed {
            tool: "componentize-py".into(),
        });
    }
    Ok((name, out))
}

/// Copies the module (a package folder or one `.py` file) into `staged`,
/// emptied first; bytecode caches are left behind.
fn stage_module(module_path: &Path, staged: &Path) -> Result<(), BuildError> {
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| BuildError::Write { path, source }
    };
    if staged.exists() {
        std::fs::remove_dir_all(staged).map_err(write_error(staged))?;
    }
    std::fs::create_dir_all(staged).map_err(write_error(staged))?;
    let Some(file_name) = module_path.file_name() else {
        return Ok(());
    };
    copy_tree(module_path, &staged.join(file_name))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    if from.is_file() {
        return std::fs::copy(from, to)
            .map(drop)
            .map_err(|source| BuildError::Write {
                path: to.display().to_string(),
                source,
            });
    }
    std::fs::create_dir_all(to).map_err(|source| BuildError::Write {
        path: to.display().to_string(),
        source,
    })?;
    let entries = std::fs::read_dir(from).map_err(|source| BuildError::Read {
        path: from.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| BuildError::Read {
            path: from.display().to_string(),
            source,
        })?;
        if entry.file_name() == "__pycache__" {
            continue;
        }
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Whether a PEP 508 requirement names the SDK (any version or extras).
fn is_sdk_requirement(requirement: &str) -> bool {
    let name: String = requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    name.to_ascii_lowercase().replace(['_', '.'], "-") == SDK_DISTRIBUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_requirement_is_recognised_in_any_spelling() {
        for r in [
            "junction-sdk",
            "junction_sdk>=0.1",
            "Junction.SDK [x]",
            " junction-sdk==0.1.0",
        ] {
            assert!(is_sdk_requirement(r), "{r}");
        }
        for r in ["requests", "junction-sdk-extra", "junction"] {
            assert!(!is_sdk_requirement(r), "{r}");
        }
    }
}
