//! Event files for `junction run`: `{"kind": ..., "payload": ..., "id"?: ...}`.

use std::io::Read;
use std::path::Path;

use junction_runtime::Event;
use junction_store::now_ms;

/// What can be wrong with an event file.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    #[error("cannot read the event from {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the event in {0} is not JSON: {1}")]
    NotJson(String, serde_json::Error),
    #[error(
        "the event in {0} must be a JSON object with a string `kind` and a `payload`, e.g. {{\"kind\": \"campaign.sync\", \"payload\": {{}}}}"
    )]
    Shape(String),
}

/// Reads an event from a file, or from standard input when `source` is `-`.
pub fn read_event(source: &str) -> Result<Event, EventFileError> {
    let shown = if source == "-" {
        "standard input".to_owned()
    } else {
        source.to_owned()
    };
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| EventFileError::Read(shown.clone(), e))?;
    } else {
        text = std::fs::read_to_string(Path::new(source))
            .map_err(|e| EventFileError::Read(shown.clone(), e))?;
    }
    parse_event(&text, &shown)
}

/// Parses the JSON form of an event.
pub fn parse_event(text: &str, shown: &str) -> Result<Event, EventFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| EventFileError::NotJson(shown.to_owned(), e))?;
    let kind = value["kind"]
        .as_str()
        .ok_or_else(|| EventFileError::Shape(shown.to_owned()))?;
    let payload = value
        .get("payload")
        .cloned()
        .unwrap_or(serde_json::Value::Object(Default::default()));
    let mut event = Event::new(kind, payload.to_string());
    if let Some(id) = value["id"].as_str() {
        event.id = id.to_owned();
    }
    event.occurred_at_ms = value["occurred_at_ms"].as_u64().unwrap_or_else(now_ms);
    Ok(event)
}
