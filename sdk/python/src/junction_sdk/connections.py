"""What a plugin may know about its connections (the WIT `connections`
interface): link name, service, status, scopes, base URL and non-secret
metadata. Never a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wit_world.imports import connections as _wit

Status = Literal["connected", "disconnected", "needs-reauth", "error"]

_STATUS: dict[_wit.Status, Status] = {
    _wit.Status.CONNECTED: "connected",
    _wit.Status.DISCONNECTED: "disconnected",
    _wit.Status.NEEDS_REAUTH: "needs-reauth",
    _wit.Status.ERROR: "error",
}


@dataclass(frozen=True)
class Connection:
    """A connection as a plugin sees it."""

    link_name: str
    service: str
    auth_type: str
    status: Status
    scopes: list[str] = field(default_factory=list)
    base_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_connected(self) -> bool:
        return self.status == "connected"


def _from_wit(c: _wit.Connection) -> Connection:
    return Connection(
        link_name=c.link_name,
        service=c.service,
        auth_type=c.auth_type,
        status=_STATUS.get(c.status, "error"),
        scopes=list(c.scopes),
        base_url=c.base_url,
        metadata=dict(c.metadata),
    )


def get(link_name: str) -> Connection | None:
    """The connection granted to this plugin under `link_name`, if any."""
    found = _wit.get(link_name)
    return None if found is None else _from_wit(found)


def all() -> list[Connection]:
    """Every connection granted to this plugin."""
    return [_from_wit(c) for c in _wit.all()]
