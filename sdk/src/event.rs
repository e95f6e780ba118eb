//! The event a handler receives.

use serde::de::DeserializeOwned;

use crate::{Error, bindings};

/// The event that made the host run the plugin.
///
/// ```
/// let event = junction_sdk::Event::new("campaign.sync", r#"{"campaign_id":"c1"}"#);
/// let payload: serde_json::Value = event.payload().unwrap();
/// assert_eq!(payload["campaign_id"], "c1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id of the event; the same when a delivery is retried, so a
    /// handler can deduplicate.
    pub id: String,
    /// The event kind, e.g. `campaign.sync`.
    pub kind: String,
    /// The payload as JSON text; see [`Event::payload`].
    pub payload_json: String,
    /// When the event happened, in milliseconds since the Unix epoch.
    pub occurred_at_ms: u64,
}

impl Event {
    /// Makes an event, for unit tests of a handler.
    ///
    /// ```
    /// let event = junction_sdk::Event::new("lead.created", "{}");
    /// assert_eq!(event.kind, "lead.created");
    /// ```
    pub fn new(kind: impl Into<String>, payload_json: impl Into<String>) -> Self {
        Event {
            id: String::new(),
            kind: kind.into(),
            payload_json: payload_json.into(),
            occurred_at_ms: 0,
        }
    }

    /// Deserialises the payload into `T`; the error names the event kind and
    /// what did not match.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Lead { email: String }
    /// let event = junction_sdk::Event::new("lead.created", r#"{"email":"a@b.c"}"#);
    /// let lead: Lead = event.payload().unwrap();
    /// assert_eq!(lead.email, "a@b.c");
    /// ```
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload_json)
            .map_err(|err| Error::msg(format!("payload of `{}` event: {err}", self.kind)))
    }
}

impl From<bindings::Event> for Event {
    fn from(event: bindings::Event) -> Self {
        Event {
            id: event.id,
            kind: event.kind,
            payload_json: event.payload,
            occurred_at_ms: event.occurred_at_ms,
        }
    }
}
