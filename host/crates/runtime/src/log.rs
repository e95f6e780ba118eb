//! The `log` interface: plugin log lines go into the execution's log (never
//! into the host's own tracing output, which a plugin must not be able to
//! fill). Its state is [`LogState`], a handle to the execution's log book.

use wasmtime::component::{HasData, Linker};

use crate::bindings::junction::plugin::log::{self as wit, Host, Level};
use crate::stdio::LogBook;

/// Where one execution's `log` lines go.
pub(crate) struct LogState {
    book: LogBook,
}

impl LogState {
    pub(crate) fn new(book: LogBook) -> Self {
        LogState { book }
    }
}

/// The `log` interface's data in the linker.
struct Log;

impl HasData for Log {
    type Data<'a> = &'a mut LogState;
}

/// Links the `log` interface, its state found by `get`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut LogState,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Log>(linker, get)
}

impl Host for LogState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.book.push(level, message);
        Ok(())
    }
}
