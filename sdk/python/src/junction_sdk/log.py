"""Lines for the execution's log (the WIT `log` interface)."""

from __future__ import annotations

from typing import Literal

from wit_world.imports import log as _wit

LevelName = Literal["trace", "debug", "info", "warn", "error"]

_LEVELS = {
    "trace": _wit.Level.TRACE,
    "debug": _wit.Level.DEBUG,
    "info": _wit.Level.INFO,
    "warn": _wit.Level.WARN,
    "error": _wit.Level.ERROR,
}


def log(level: LevelName, message: str) -> None:
    """Appends one line to the execution's log at `level`."""
    wit_level = _LEVELS.get(level)
    if wit_level is None:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    _wit.log(wit_level, str(message))


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)
