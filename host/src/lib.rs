//! Junction: a WebAssembly component plugin host with managed third-party
//! connections. The binary `junction` is in `main.rs`; everything it does is
//! in these modules.

pub mod cli;
pub use junction_core::manifest;
pub use junction_events as events;
pub use junction_events::metrics;
pub use junction_net as netguard;
pub use junction_oauth as oauth;
pub mod ports;
pub mod registry;
pub use junction_runtime as runtime;
pub mod server;
pub use junction_store as store;
