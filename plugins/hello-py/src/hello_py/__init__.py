"""The smallest useful Junction plugin in Python: echoes the event and logs
a line. Copy this folder to start a new plugin."""

from typing import Any

from junction_sdk import Event, export, log


def handle(event: Event) -> dict[str, Any]:
    log.info(f"hello received a `{event.kind}` event")
    return {"event_id": event.id, "kind": event.kind, "payload": event.payload()}


WitWorld = export(handle)
