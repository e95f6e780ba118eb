//! Values encoded before they reach a write transaction: the journal's
//! entries carry their JSON with them.

use serde::Serialize;

use crate::StoreError;

/// A value with its stored form, encoded by the caller so the journal
/// writer (one thread, the point every write passes) only copies bytes.
#[derive(Debug, Clone)]
pub struct Encoded<T> {
    /// The value.
    pub value: T,
    /// Its JSON.
    pub bytes: Vec<u8>,
}

impl<T: Serialize> Encoded<T> {
    /// Encodes `value`.
    pub fn new(value: T) -> Result<Self, StoreError> {
        let bytes = encode("journal entry", &value)?;
        Ok(Encoded { value, bytes })
    }
}

/// `value` as stored JSON; `what` names it in the error.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(what.to_owned(), e.to_string()))
}
