//! The event a plugin runs for: id, kind, JSON payload, time.

use crate::ids::{new_id, now_ms};

/// The event handed to a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id.
    pub id: String,
    /// Kind, e.g. `campaign.sync`.
    pub kind: String,
    /// JSON text.
    pub payload: String,
    /// When it happened.
    pub occurred_at_ms: u64,
}

impl Event {
    /// A new event with a fresh id, happening now.
    pub fn new(kind: impl Into<String>, payload: impl Into<String>) -> Self {
        Event {
            id: new_id(),
            kind: kind.into(),
            payload: payload.into(),
            occurred_at_ms: now_ms(),
        }
    }
}
