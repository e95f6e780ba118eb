"""The exceptions a plugin sees: one per WIT `http.error` case, plus
`StatusError` for a response whose status the caller refused, all under
`JunctionError` (what a handler raises to fail with a message)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import Response


class JunctionError(Exception):
    """A handler's error: its message ends up in the execution record as a
    `plugin-error`. Any other exception does too, with its type's name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class HttpError(JunctionError):
    """Why `invoke-url` could not give a response (the WIT `http.error`)."""

    #: The WIT case, e.g. `"forbidden"`.
    case: str = "http"


class UnknownConnection(HttpError):
    """No connection has this link name, or it was not granted to this plugin."""

    case = "unknown-connection"


class ConnectionUnavailable(HttpError):
    """The connection exists but cannot be used now (not authorised, revoked,
    or its token could not be refreshed)."""

    case = "connection-unavailable"


class Forbidden(HttpError):
    """The destination or a header is not allowed."""

    case = "forbidden"


class InvalidRequest(HttpError):
    """The request itself is malformed (bad URL, bad header, ...)."""

    case = "invalid-request"


class Timeout(HttpError):
    """The call did not finish within its time limit."""

    case = "timeout"


class TooLarge(HttpError):
    """The response body is larger than the host accepts."""

    case = "too-large"


class LimitExceeded(HttpError):
    """A per-execution budget (number of calls, concurrent calls) is used up."""

    case = "limit-exceeded"


class Transport(HttpError):
    """The connection failed (refused, reset, TLS, DNS, ...)."""

    case = "transport"


class DecodeError(HttpError):
    """A response body is not the JSON expected."""

    case = "decode"


class StatusError(HttpError):
    """`Response.raise_for_status()` on a 4xx or 5xx response."""

    case = "status"

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status}: {response.text()[:500]}")
        self.response = response

    @property
    def status(self) -> int:
        return self.response.status


class KvError(JunctionError):
    """The host refused a kv write (key or value too large, quota used up)."""


class PayloadError(JunctionError):
    """The event's payload is not what the handler expected."""
