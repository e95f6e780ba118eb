//! Checks that bytes are a component of the `junction:plugin/plugin` world
//! before anything runs or is stored, with errors that say what is wrong.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::HostState;
use super::bindings::PluginPre;

/// Why a component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly file: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build the plugin for the wasm32-wasip2 target (`junction build`)"
    )]
    CoreModule,
    #[error("unknown WebAssembly encoding version; expected a component")]
    UnknownVersion,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component is not of the junction:plugin/plugin world: {0}")]
    WrongWorld(String),
    #[error("the plugin's manifest: {0}")]
    Manifest(String),
    #[error("the component cannot start here: {0}")]
    DoesNotFit(String),
}

/// Interfaces a plugin may import.
fn import_allowed(name: &str) -> bool {
    name.starts_with("junction:plugin/") || name.starts_with("wasi:")
}

/// Rejects bytes that are not a component before the compiler sees them.
fn check_encoding(bytes: &[u8]) -> Result<(), LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule);
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(LoadError::UnknownVersion);
    }
    Ok(())
}

/// Compiles `bytes` ahead of time into an artifact for this engine.
pub(crate) fn precompile(engine: &Engine, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    check_encoding(bytes)?;
    engine
        .precompile_component(bytes)
        .map_err(|e| LoadError::Compile(format!("{e:#}")))
}

pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    check_encoding(bytes)?;
    let component =
        Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    check_shape(engine, &component)?;
    Ok(component)
}

/// Lists unexpected imports and missing exports by name, before the linker's
/// type check gives its (more technical) verdict.
pub(crate) fn check_shape(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let unexpected: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !import_allowed(name))
        .map(|name| format!("`{name}`"))
        .collect();
    let mut problems = Vec::new();
    if !unexpected.is_empty() {
        problems.push(format!(
            "unexpected imports {} (a plugin may import only junction:plugin/* and WASI)",
            unexpected.join(", ")
        ));
    }
    if ty.get_export(engine, "handle").is_none() {
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| format!("`{n}`")).collect();
        problems.push(format!(
            "missing export `handle` (it exports {}); export one with junction_sdk::export!",
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LoadError::WrongWorld(problems.join("; ")))
    }
}

pub(crate) fn instantiate_pre(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> Result<PluginPre<HostState>, LoadError> {
    check_shape(engine, component)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
    PluginPre::new(pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))
}
