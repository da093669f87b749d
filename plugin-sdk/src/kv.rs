//! A small persistent key-value store private to the plugin, kept in the
//! host's database. Keys are at most 255 bytes, values at most 1 MiB.
//!
//! Errors are 500 [`Error`]s carrying the host's message, so handlers can
//! use `?`.

use crate::__bindings::plinth::plugin::kv as wit;
use crate::Error;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    crate::guest_only("kv::get");
    wit::get(key).map_err(Error::internal)
}

/// The value under `key` as UTF-8 text (invalid bytes become U+FFFD).
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    Ok(get(key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
    crate::guest_only("kv::set");
    wit::set(key, value.as_ref()).map_err(Error::internal)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    crate::guest_only("kv::delete");
    wit::delete(key).map_err(Error::internal)
}
