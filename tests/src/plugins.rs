//! Builds every plugin the tests use, once per test binary, in one cargo
//! invocation with its own target directory (so it never waits on the
//! target directory of the `cargo test` that runs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

const PACKAGES: [&str; 4] = ["hello", "mailchimp-sync", "probe", "wrong-world"];

/// The path of a built plugin's component, e.g. `component("mailchimp-sync")`.
pub fn component(package: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target_dir = plugin_target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
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
        target_dir.join("wasm32-wasip2").join("release")
    });
    assert!(PACKAGES.contains(&package), "unknown test plugin {package}");
    dir.join(format!("{}.wasm", package.replace('-', "_")))
}

/// The bytes of a built plugin's component.
pub fn component_bytes(package: &str) -> Vec<u8> {
    std::fs::read(component(package)).expect("read built component")
}

/// The `[package.metadata.junction]` manifest of an example plugin in `plugins/`.
pub fn example_manifest(package: &str) -> junction_host::manifest::Manifest {
    junction_host::manifest::Manifest::from_cargo_toml(
        &workspace_root()
            .join("plugins")
            .join(package)
            .join("Cargo.toml"),
    )
    .expect("the plugin's manifest")
}

/// The same manifest as JSON, the form an upload carries.
pub fn example_manifest_json(package: &str) -> serde_json::Value {
    serde_json::to_value(example_manifest(package)).expect("manifest as JSON")
}
