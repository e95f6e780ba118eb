//! A durable key-value store private to this plugin: sync cursors and small state.
//!
//! ```no_run
//! # fn main() -> junction_sdk::Result<()> {
//! let cursor: Option<String> = junction_sdk::kv::get_json("cursor")?;
//! junction_sdk::kv::set_json("cursor", &"2026-11-28T00:00:00Z")?;
//! # Ok(()) }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::junction::plugin::kv as wit;

/// The bytes stored under `key`.
///
/// ```no_run
/// let raw = junction_sdk::kv::get("counter").unwrap_or_default();
/// ```
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::get(key)
}

/// Stores `value` under `key`; fails when the key or value is over the host's limits.
///
/// ```no_run
/// # fn main() -> junction_sdk::Result<()> {
/// junction_sdk::kv::set("counter", b"1")?;
/// # Ok(()) }
/// ```
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    wit::set(key, value).map_err(|err| Error::msg(format!("kv set `{key}`: {err}")))
}

/// Removes `key`; a missing key is not an error.
///
/// ```no_run
/// junction_sdk::kv::delete("cursor");
/// ```
pub fn delete(key: &str) {
    wit::delete(key)
}

/// The keys that start with `prefix`, in order.
///
/// ```no_run
/// for key in junction_sdk::kv::list_keys("cursor/") {
///     junction_sdk::kv::delete(&key);
/// }
/// ```
pub fn list_keys(prefix: &str) -> Vec<String> {
    wit::list_keys(prefix)
}

/// The JSON value stored under `key`, deserialised.
///
/// ```no_run
/// # fn main() -> junction_sdk::Result<()> {
/// let seen: Option<Vec<String>> = junction_sdk::kv::get_json("seen")?;
/// # Ok(()) }
/// ```
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match get(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
            Error::msg(format!("kv `{key}` does not hold the JSON expected: {err}"))
        }),
    }
}

/// Stores `value` as JSON under `key`.
///
/// ```no_run
/// # fn main() -> junction_sdk::Result<()> {
/// junction_sdk::kv::set_json("seen", &vec!["a", "b"])?;
/// # Ok(()) }
/// ```
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)?;
    set(key, &bytes)
}
