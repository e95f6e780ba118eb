"""Junction plugins in Python, over the `junction:plugin` WIT world.

    from junction_sdk import Event, Request, export, log

    def handle(event: Event) -> dict:
        campaign = Request.get(f"/campaigns/{event.payload()['campaign_id']}") \\
            .connection("mailchimp").send().raise_for_status().json()
        log.info(f"campaign {campaign['id']}")
        return {"title": campaign["settings"]["title"]}

    WitWorld = export(handle)

Build with `junction build <dir>` (componentize-py underneath); the
manifest is `[tool.junction]` in the project's `pyproject.toml`.
"""

from . import connections, kv, log
from .errors import (
    ConnectionUnavailable,
    DecodeError,
    Forbidden,
    HttpError,
    InvalidRequest,
    JunctionError,
    KvError,
    LimitExceeded,
    PayloadError,
    StatusError,
    Timeout,
    TooLarge,
    Transport,
    UnknownConnection,
)
from .event import TOOL_SCHEMA_KIND, Event, export
from .http import Request, Response, send_all

__all__ = [
    "ConnectionUnavailable",
    "DecodeError",
    "Event",
    "Forbidden",
    "HttpError",
    "InvalidRequest",
    "JunctionError",
    "KvError",
    "LimitExceeded",
    "PayloadError",
    "Request",
    "Response",
    "StatusError",
    "TOOL_SCHEMA_KIND",
    "Timeout",
    "TooLarge",
    "Transport",
    "UnknownConnection",
    "connections",
    "export",
    "kv",
    "log",
    "send_all",
]
