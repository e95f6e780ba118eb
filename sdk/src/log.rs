//! Lines for the execution's log, through the host.
//!
//! Use the macros [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn) and [`error!`](crate::error).
//!
//! ```no_run
//! junction_sdk::info!("synced {} members", 42);
//! ```

use crate::bindings::junction::plugin::log as wit;

/// How important a line is.
///
/// ```no_run
/// junction_sdk::log::log(junction_sdk::log::Level::Warn, "slow response");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not stop the work.
    Warn,
    /// Something failed.
    Error,
}

/// Appends one line to the execution's log.
///
/// ```no_run
/// junction_sdk::log::log(junction_sdk::log::Level::Info, "hello");
/// ```
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    wit::log(level, message);
}

/// Logs at trace level, with `format!` arguments.
///
/// ```no_run
/// junction_sdk::trace!("page {}", 3);
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs at debug level, with `format!` arguments.
///
/// ```no_run
/// junction_sdk::debug!("cursor {:?}", Some("x"));
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs at info level, with `format!` arguments.
///
/// ```no_run
/// junction_sdk::info!("synced {} members", 10);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs at warn level, with `format!` arguments.
///
/// ```no_run
/// junction_sdk::warn!("retrying after {} s", 2);
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs at error level, with `format!` arguments.
///
/// ```no_run
/// junction_sdk::error!("record {} rejected", "r1");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}
