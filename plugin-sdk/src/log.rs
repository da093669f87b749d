//! Log lines into the host's log, tagged by the host with the plugin's name
//! and the current request id.
//!
//! Functions take a `&str`; the macros of the same names take `format!`
//! arguments:
//!
//! ```no_run
//! use plinth_sdk::log;
//!
//! log::info("started");
//! let n = 3;
//! log::warn!("{n} items are low on stock");
//! ```

use crate::__bindings::plinth::plugin::log as wit;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    crate::guest_only("log::log");
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    wit::log(level, message);
}

/// Writes a `trace` line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: &str) {
    log(Level::Error, message);
}

// The macros are `#[macro_export]`ed (so at the crate root under `__` names)
// and re-exported here, so they read `log::info!` like the functions.

/// Writes a `trace` line from `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __plinth_log_trace {
    ($($arg:tt)*) => { $crate::log::trace(&::std::format!($($arg)*)) };
}

/// Writes a `debug` line from `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __plinth_log_debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// Writes an `info` line from `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __plinth_log_info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// Writes a `warn` line from `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __plinth_log_warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// Writes an `error` line from `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __plinth_log_error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}

#[doc(inline)]
pub use crate::__plinth_log_debug as debug;
#[doc(inline)]
pub use crate::__plinth_log_error as error;
#[doc(inline)]
pub use crate::__plinth_log_info as info;
#[doc(inline)]
pub use crate::__plinth_log_trace as trace;
#[doc(inline)]
pub use crate::__plinth_log_warn as warn;
