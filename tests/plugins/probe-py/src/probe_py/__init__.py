"""Test plugin: each event kind tries one thing at the sandbox's edge from
Python and reports what happened, like the Rust `probe`."""

import os
import socket
import sys
from typing import Any

from junction_sdk import Event, HttpError, JunctionError, Request, connections, export, kv, send_all


def attempt(action: Any) -> tuple[bool, str]:
    try:
        return True, repr(action())
    except BaseException as err:  # the report says what stopped it
        return False, f"{type(err).__name__}: {err}"


def escape(payload: dict[str, Any]) -> dict[str, Any]:
    host, _, port = str(payload.get("addr", "127.0.0.1:9")).rpartition(":")
    file_ok, file = attempt(lambda: len(open("/etc/passwd").read()))
    dir_ok, listing = attempt(lambda: len(os.listdir("/")))

    def connect() -> None:
        with socket.create_connection((host, int(port)), timeout=2):
            pass

    socket_ok, sock = attempt(connect)
    lookup_ok, lookup = attempt(lambda: socket.getaddrinfo("localhost", 80))
    return {
        "file": file, "file_ok": file_ok,
        "dir": listing, "dir_ok": dir_ok,
        "env": len(os.environ), "args": len(sys.argv) if sys.argv != [""] else 0,
        "socket": sock, "socket_ok": socket_ok,
        "lookup": lookup, "lookup_ok": lookup_ok,
    }


def request_of(spec: dict[str, Any]) -> Request:
    request = Request(spec.get("method", "GET"), spec["url"]).query(spec.get("query", []))
    if spec.get("connection"):
        request.connection(spec["connection"])
    for name, value in spec.get("headers", []):
        request.header(name, value)
    if spec.get("body") is not None:
        request.body_bytes(spec["body"])
    if spec.get("timeout_ms") is not None:
        request.timeout(spec["timeout_ms"] / 1000)
    return request


def call(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        response = request_of(spec).send()
    except HttpError as err:
        return {"error": str(err), "case": err.case}
    return answer(response)


def answer(response: Any) -> dict[str, Any]:
    if isinstance(response, HttpError):
        return {"error": str(response), "case": response.case}
    # Printed, so a test can check what the plugin saw holds no credential.
    print(f"got {response.status} {response.text()}")
    return {"status": response.status, "body": response.text(), "headers": response.headers}


def handle(event: Event) -> Any:
    if event.kind == "loop":
        counter = 0
        while True:
            counter += 1
    if event.kind == "alloc":
        hoard = []
        while True:
            hoard.append(bytearray(1024 * 1024))
    if event.kind == "escape":
        return escape(event.payload())
    if event.kind == "call":
        return call(event.payload())
    if event.kind == "calls":
        return [call(spec) for spec in event.payload()]
    if event.kind == "batches":
        return [
            [answer(response) for response in send_all(request_of(spec) for spec in batch)]
            for batch in event.payload()
        ]
    if event.kind == "connections":
        return {
            "all": [
                {
                    "link_name": c.link_name, "service": c.service, "auth_type": c.auth_type,
                    "base_url": c.base_url, "metadata": c.metadata, "scopes": c.scopes,
                    "connected": c.is_connected,
                }
                for c in connections.all()
            ],
            "not_granted_hidden": connections.get("not_granted") is None,
        }
    if event.kind == "fail":
        raise JunctionError("probe was asked to fail")
    if event.kind == "raise":
        raise KeyError("missing")
    if event.kind == "kv":
        count = (kv.get_json("count") or 0) + 1
        kv.set_json("count", count)
        try:
            kv.set("big", bytes(2 * 1024 * 1024))
            big_refused = False
        except JunctionError:
            big_refused = True
        return {"count": count, "keys": kv.list_keys(""), "big_refused": big_refused}
    raise JunctionError(f"probe does not know `{event.kind}`")


WitWorld = export(handle)
