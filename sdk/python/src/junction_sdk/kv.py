"""The plugin's private, durable key-value store (the WIT `kv` interface),
with JSON helpers for small state such as sync cursors."""

from __future__ import annotations

import json
from typing import Any

from componentize_py_types import Err
from wit_world.imports import kv as _wit

from .errors import KvError


def get(key: str) -> bytes | None:
    """The value stored under `key`, if any."""
    return _wit.get(key)


def set(key: str, value: bytes | str) -> None:
    """Stores `value` under `key`; raises `KvError` when the host refuses it."""
    data = value.encode() if isinstance(value, str) else bytes(value)
    try:
        _wit.set(key, data)
    except Err as err:
        raise KvError(f"kv set `{key}`: {err.value}") from None


def delete(key: str) -> None:
    """Removes `key`; removing a missing key is not an error."""
    _wit.delete(key)


def list_keys(prefix: str = "") -> list[str]:
    """The keys that start with `prefix`, in order."""
    return list(_wit.list_keys(prefix))


def get_json(key: str) -> Any | None:
    """The JSON value stored under `key`, or None when there is none."""
    raw = _wit.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise KvError(f"kv `{key}` does not hold JSON: {err}") from None


def set_json(key: str, value: Any) -> None:
    """Stores `value` as JSON under `key`."""
    set(key, json.dumps(value, separators=(",", ":")))
