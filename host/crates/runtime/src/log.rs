//! The `log` interface: plugin log lines go into the execution's log (never
//! into the host's own tracing output, which a plugin must not be able to fill).

use super::HostState;
use super::bindings::junction::plugin::log::{Host, Level};

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.logbook.push(level, message);
        Ok(())
    }
}
