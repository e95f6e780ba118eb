"""Outbound HTTP done by the host (the WIT `http` interface, Deluge's
`invokeurl`), in the shape of the Rust SDK's `Request`/`Response`:

    campaign = Request.get("/campaigns/abc").connection("mailchimp").send().json()

With a connection, a relative URL is resolved against the connection's API
base URL and the host attaches the credentials; the plugin never sees them.
Any status is a response; `raise_for_status()` turns 4xx/5xx into
`StatusError`. A call the host cannot make raises the `HttpError` subclass
of its WIT case."""

from __future__ import annotations

import json
from typing import Any, Iterable, Literal, Mapping

from componentize_py_types import Err
from wit_world.imports import http as _wit

from . import errors

MethodName = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

_METHODS: dict[str, _wit.Method] = {
    "GET": _wit.Method.GET,
    "HEAD": _wit.Method.HEAD,
    "POST": _wit.Method.POST,
    "PUT": _wit.Method.PUT,
    "PATCH": _wit.Method.PATCH,
    "DELETE": _wit.Method.DELETE,
}

QueryPairs = Mapping[str, Any] | Iterable[tuple[str, Any]]


class Response:
    """The answer to a request: status, headers (names in lower case), body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first header called `name` (any case)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def text(self) -> str:
        """The body as UTF-8 text (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; `DecodeError` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise errors.DecodeError(
                f"the HTTP {self.status} response is not the JSON expected: {err}"
            ) from None

    def raise_for_status(self) -> Response:
        """This response when it is 2xx or 3xx; `StatusError` otherwise."""
        if self.status >= 400:
            raise errors.StatusError(self)
        return self


class Request:
    """One outbound request, built step by step and sent with `send()`."""

    def __init__(self, method: MethodName, url: str) -> None:
        upper = method.upper()
        if upper not in _METHODS:
            raise errors.InvalidRequest(f"unknown HTTP method `{method}`")
        self.method: str = upper
        self.url = url
        self.query_pairs: list[tuple[str, str]] = []
        self.headers: list[tuple[str, str]] = []
        self.body: bytes | None = None
        self.connection_name: str | None = None
        self.timeout_ms: int | None = None

    @classmethod
    def get(cls, url: str) -> Request:
        return cls("GET", url)

    @classmethod
    def head(cls, url: str) -> Request:
        return cls("HEAD", url)

    @classmethod
    def post(cls, url: str) -> Request:
        return cls("POST", url)

    @classmethod
    def put(cls, url: str) -> Request:
        return cls("PUT", url)

    @classmethod
    def patch(cls, url: str) -> Request:
        return cls("PATCH", url)

    @classmethod
    def delete(cls, url: str) -> Request:
        return cls("DELETE", url)

    def connection(self, link_name: str) -> Request:
        """Sends the request with the credentials of connection `link_name`."""
        self.connection_name = link_name
        return self

    def query(self, pairs: QueryPairs) -> Request:
        """Appends query parameters, in order."""
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self.query_pairs.extend((str(k), str(v)) for k, v in items)
        return self

    def header(self, name: str, value: str) -> Request:
        """Adds a header (with a connection, credential headers are refused)."""
        self.headers.append((name, value))
        return self

    def body_bytes(self, body: bytes | str) -> Request:
        """Sets the raw body."""
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        return self

    def json(self, value: Any) -> Request:
        """Sets a JSON body and `content-type: application/json`."""
        self.body = json.dumps(value, separators=(",", ":")).encode()
        if not any(k.lower() == "content-type" for k, _ in self.headers):
            self.headers.append(("content-type", "application/json"))
        return self

    def timeout(self, seconds: float) -> Request:
        """Time limit for this call; the host never waits past the execution's deadline."""
        if seconds < 0:
            raise errors.InvalidRequest("a timeout cannot be negative")
        self.timeout_ms = min(int(seconds * 1000), 2**32 - 1)
        return self

    def send(self) -> Response:
        """Performs the request through the host and waits for the whole response."""
        try:
            answer = _wit.send(self._to_wit())
        except Err as err:
            raise _error_from_wit(err.value) from None
        return Response(answer.status, _header_pairs(answer.headers), bytes(answer.body))

    def _to_wit(self) -> Any:
        return _wit.Request(
            method=_METHODS[self.method],
            url=self.url,
            query=list(self.query_pairs),
            headers=list(self.headers),
            body=self.body,
            connection=self.connection_name,
            timeout_ms=self.timeout_ms,
        )


def send_all(requests: Iterable[Request]) -> list[Response | errors.HttpError]:
    """Sends several requests at once and waits for all of them, like
    `asyncio.gather(..., return_exceptions=True)`: the answers come in the
    order of the requests, each a `Response` or the `HttpError` its `send()`
    would have raised. The host keeps at most the plugin's in-flight limit
    (`limits.http-concurrency`, 6 by default) in flight; each request counts
    against `limits.http-calls`."""
    batch = [request._to_wit() for request in requests]
    if not batch:
        return []
    answers: list[Response | errors.HttpError] = []
    for answer in _wit.send_many(batch):
        if isinstance(answer, Err):
            answers.append(_error_from_wit(answer.value))
        else:
            reply = answer.value
            answers.append(Response(reply.status, _header_pairs(reply.headers), bytes(reply.body)))
    return answers


def _header_pairs(block: str) -> list[tuple[str, str]]:
    """The host's header block (`name: value` lines, each ending in a
    newline) as pairs: a name never holds `:`, and one space follows it."""
    pairs: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name, value[1:] if value.startswith(" ") else value))
    return pairs


def _error_from_wit(error: Any) -> errors.HttpError:
    if isinstance(error, _wit.Error_UnknownConnection):
        return errors.UnknownConnection(f"invoke-url: unknown connection: {error.value}")
    if isinstance(error, _wit.Error_ConnectionUnavailable):
        return errors.ConnectionUnavailable(f"invoke-url: connection unavailable: {error.value}")
    if isinstance(error, _wit.Error_Forbidden):
        return errors.Forbidden(f"invoke-url: forbidden: {error.value}")
    if isinstance(error, _wit.Error_InvalidRequest):
        return errors.InvalidRequest(f"invoke-url: invalid request: {error.value}")
    if isinstance(error, _wit.Error_Timeout):
        return errors.Timeout("invoke-url: the request timed out")
    if isinstance(error, _wit.Error_TooLarge):
        return errors.TooLarge("invoke-url: the response body is too large")
    if isinstance(error, _wit.Error_LimitExceeded):
        return errors.LimitExceeded(f"invoke-url: limit exceeded: {error.value}")
    if isinstance(error, _wit.Error_Transport):
        return errors.Transport(f"invoke-url: transport error: {error.value}")
    return errors.HttpError(f"the host refused the call: {error!r}")
