//! Junction: a WebAssembly component plugin host with managed third-party
//! connections. The binary `junction` is in `main.rs`; everything it does is
//! in these modules.

pub mod cli;
pub mod errors;
pub mod events;
pub use junction_core::manifest;
pub mod metrics;
pub mod netguard;
pub mod oauth;
pub mod registry;
pub mod runtime;
pub mod server;
pub use junction_store as store;
