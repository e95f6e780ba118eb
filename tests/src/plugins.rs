//! Builds every plugin the tests use, once per test binary: the Rust ones
//! in one cargo invocation with its own target directory (so it never waits
//! on the target directory of the `cargo test` that runs it), the Python
//! and JavaScript ones with `junction build`'s own code, its toolchains
//! installed into the cache on first use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use junction_host::Language;
use junction_host::cli::build::rust;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The target directory plugins are built in.
pub fn plugin_target_dir() -> PathBuf {
    std::env::var_os("JUNCTION_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("plugins"))
}

const PACKAGES: [&str; 6] = [
    "hello",
    "mailchimp-sync",
    "probe",
    "wrong-world",
    "noop",
    "contract-0-1-0",
];

/// Plugins in Python and JavaScript: package name and folder under the
/// workspace root.
const SCRIPTED: [(&str, &str); 6] = [
    ("hello-py", "plugins/hello-py"),
    ("hello-js", "plugins/hello-js"),
    ("mailchimp-sync-py", "plugins/mailchimp-sync-py"),
    ("mailchimp-sync-js", "plugins/mailchimp-sync-js"),
    ("probe-py", "tests/plugins/probe-py"),
    ("probe-js", "tests/plugins/probe-js"),
];

/// The same plugin in each language: `in_language("mailchimp-sync",
/// Language::Python)` is `mailchimp-sync-py`.
pub fn in_language(package: &str, language: Language) -> String {
    match language {
        Language::Rust => package.to_owned(),
        Language::Python => format!("{package}-py"),
        Language::JavaScript => format!("{package}-js"),
    }
}

/// Every language a plugin can be written in, for tests run once in each.
pub const LANGUAGES: [Language; 3] = [Language::Rust, Language::Python, Language::JavaScript];

/// The path of a built plugin's component, e.g. `component("mailchimp-sync")`
/// or `component("mailchimp-sync-py")`.
pub fn component(package: &str) -> PathBuf {
    if let Some((_, dir)) = SCRIPTED.iter().find(|(name, _)| *name == package) {
        return scripted_component(package, dir);
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target_dir = plugin_target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args(["build", "--target", rust::WASM_TARGET])
            .args(rust::profile_args())
            .arg("--target-dir")
            .arg(&target_dir);
        for package in PACKAGES {
            command.args(["-p", package]);
        }
        let status = command
            .status()
            .expect("run cargo to build the test plugins");
        assert!(
            status.success(),
            "building the test plugins failed (is the wasm32-wasip2 target installed?)"
        );
        target_dir
            .join(rust::WASM_TARGET)
            .join(rust::PLUGIN_PROFILE)
    });
    assert!(PACKAGES.contains(&package), "unknown test plugin {package}");
    dir.join(format!("{}.wasm", package.replace('-', "_")))
}

fn scripted_component(package: &str, dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    built
        .entry(package.to_owned())
        .or_insert_with(|| build_scripted(package, &workspace_root().join(dir)))
        .clone()
}

/// Builds a Python or JavaScript plugin with `junction build`'s code, or
/// answers the component an earlier test binary built from the same
/// sources: their builds take seconds each, and every test binary needs
/// them.
fn build_scripted(package: &str, project: &Path) -> PathBuf {
    let root = workspace_root();
    let inputs = [
        project.to_owned(),
        root.join("sdk/python/src"),
        root.join("sdk/js/index.js"),
        root.join("wit"),
        root.join("host/src/cli/build"),
    ];
    let digest = sources_digest(&inputs);
    let cache = plugin_target_dir().join("scripted");
    let cached = cache.join(format!("{package}-{digest}.wasm"));
    if cached.is_file() {
        return cached;
    }
    let built = junction_host::cli::build::build_plugin(project, Some(&plugin_target_dir()))
        .unwrap_or_else(|e| panic!("building {package}: {e}"));
    std::fs::create_dir_all(&cache).expect("create the scripted plugins' cache");
    // Another test binary may be reading the cached file: write beside it
    // and rename.
    let partial = cache.join(format!("{package}-{digest}.{}.partial", std::process::id()));
    std::fs::copy(&built.path, &partial).expect("copy the built component");
    std::fs::rename(&partial, &cached).expect("keep the built component");
    cached
}

/// A digest of every file under `inputs` (folders walked, build outputs
/// and caches left out), names and contents.
fn sources_digest(inputs: &[PathBuf]) -> String {
    use sha2::{Digest, Sha256};
    fn walk(path: &Path, files: &mut Vec<PathBuf>) {
        if path.is_file() {
            files.push(path.to_owned());
            return;
        }
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if matches!(
                name.to_str(),
                Some("target" | "node_modules" | "__pycache__")
            ) {
                continue;
            }
            walk(&entry.path(), files);
        }
    }
    let mut files = Vec::new();
    for input in inputs {
        walk(input, &mut files);
    }
    files.sort();
    let root = workspace_root();
    let mut hasher = Sha256::new();
    for file in files {
        // Relative names: another checkout of the same sources reuses it.
        let name = file.strip_prefix(&root).unwrap_or(&file);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&file).unwrap_or_default());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
}

/// The bytes of a built plugin's component.
pub fn component_bytes(package: &str) -> Vec<u8> {
    std::fs::read(component(package)).expect("read built component")
}

/// The manifest of an example plugin in `plugins/`, from its project file
/// (`Cargo.toml`, `pyproject.toml` or `package.json`).
pub fn example_manifest(package: &str) -> junction_host::manifest::Manifest {
    let dir = workspace_root().join("plugins").join(package);
    let language = junction_host::cli::build::project_language(&dir).expect("a plugin project");
    junction_host::manifest::Manifest::from_project_file(
        language.manifest_source(),
        &dir.join(language.manifest_source().file_name()),
    )
    .expect("the plugin's manifest")
}

/// The same manifest as JSON, the form an upload carries.
pub fn example_manifest_json(package: &str) -> serde_json::Value {
    serde_json::to_value(example_manifest(package)).expect("manifest as JSON")
}
