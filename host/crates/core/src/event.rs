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
    /// The end user it runs for: their connections are the ones the
    /// plugin's requests use.
    pub end_user: Option<String>,
}

/// A request's payload as an event's JSON text: as it was sent, `null`
/// when it was left out.
pub fn payload_text(payload: Option<Box<serde_json::value::RawValue>>) -> String {
    payload.map_or_else(
        || "null".to_owned(),
        |raw| String::from(Box::<str>::from(raw)),
    )
}

impl Event {
    /// A new event with a fresh id, happening now.
    pub fn new(kind: impl Into<String>, payload: impl Into<String>) -> Self {
        Event {
            id: new_id(),
            kind: kind.into(),
            payload: payload.into(),
            occurred_at_ms: now_ms(),
            end_user: None,
        }
    }

    /// The same event, run for `end_user`.
    pub fn for_end_user(mut self, end_user: Option<String>) -> Self {
        self.end_user = end_user;
        self
    }
}
