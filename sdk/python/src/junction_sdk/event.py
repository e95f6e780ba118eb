"""The event a plugin handles, and `export`, which turns a handler
function into the `WitWorld` class componentize-py looks for in the app
module."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import wit_world
from componentize_py_types import Err

from .errors import JunctionError, PayloadError

#: The event kind the host sends at upload to ask a tool for its input schema.
TOOL_SCHEMA_KIND = "junction.tool-schema"


@dataclass(frozen=True)
class Event:
    """The event that made the host run the plugin."""

    #: Unique id; the same on a retried delivery, so plugins can deduplicate.
    id: str
    #: e.g. `campaign.sync`, `lead.created`, `tool.call`.
    kind: str
    #: The payload as JSON text.
    payload_json: str
    #: When it happened, in milliseconds since the Unix epoch.
    occurred_at_ms: int

    def payload(self) -> Any:
        """The payload parsed as JSON; `PayloadError` when it is not JSON."""
        try:
            return json.loads(self.payload_json)
        except ValueError as err:
            raise PayloadError(f"the event's payload is not JSON: {err}") from None


Handler = Callable[[Event], Any]


def _describe(err: BaseException) -> str:
    if isinstance(err, JunctionError):
        return err.message
    # The last frame says where; the type says what.
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def export(handler: Handler, *, tool_input_schema: dict[str, Any] | None = None) -> type:
    """The plugin's entry point: `WitWorld = export(handle)` in the app module.

    `handler` takes an `Event` and returns anything `json.dumps` accepts,
    recorded as the execution's output; an exception fails the execution
    with its message. A plugin that is an MCP tool may pass the JSON Schema
    of its arguments as `tool_input_schema`; the host asks for it at upload.
    """

    class WitWorld(wit_world.WitWorld):
        def handle(self, event: wit_world.Event) -> str:
            if event.kind == TOOL_SCHEMA_KIND and tool_input_schema is not None:
                return json.dumps(tool_input_schema)
            ours = Event(event.id, event.kind, event.payload, event.occurred_at_ms)
            try:
                output = handler(ours)
            except Err:
                raise
            except Exception as err:  # every failure becomes the record's message
                raise Err(_describe(err)) from None
            try:
                return json.dumps(output)
            except (TypeError, ValueError) as err:
                raise Err(f"the handler's result cannot be serialised as JSON: {err}") from None

    return WitWorld
