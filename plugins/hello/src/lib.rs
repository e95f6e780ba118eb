//! The smallest useful Junction plugin: echoes the event and logs a line.
//! Copy this folder to start a new plugin.

use junction_sdk::{Event, Result, json};

fn handle(event: Event) -> Result<serde_json::Value> {
    junction_sdk::info!("hello received a `{}` event", event.kind);
    let payload: serde_json::Value = event.payload()?;
    Ok(json!({
        "event_id": event.id,
        "kind": event.kind,
        "payload": payload,
    }))
}

junction_sdk::export!(handle);
