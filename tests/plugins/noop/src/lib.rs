//! Bench plugin: answers `null` to every event without reading it, logging
//! or calling anything. Beside `hello` (which logs a line and parses its
//! payload), a fresh execution of it is the host's own cost: store,
//! instance, one call in and out, the record.

use junction_sdk::{Event, Result};

fn handle(_event: Event) -> Result<serde_json::Value> {
    Ok(serde_json::Value::Null)
}

junction_sdk::export!(handle);
