#!/usr/bin/env python3
"""Throughput of the release `junction` binary under wrk, a separate load
generator process on the same 2 cores: invokes of `hello` at 16 and 64
connections, events accepted (no trigger) at 64, and events executed end to
end (each one triggers `hello`). Prints `FIGURE | what | measured | goal |
reference` lines for scripts/bench.sh.

Usage: bench_http.py <junction binary> <hello.wasm> <hello's Cargo.toml>
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

DURATION_S = int(os.environ.get("JUNCTION_BENCH_SECONDS", "10"))
WRK_THREADS = "2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def figure(what: str, measured: str, goal: str, reference: str) -> None:
    print(f"FIGURE | {what} | {measured} | {goal} | {reference}", flush=True)


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            sys.exit(f"junction serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("junction serve did not come up within 60 s")


def wrk(url: str, path: str, body: dict, token: str, connections: int, seconds: int) -> dict:
    """Runs wrk with a POST of `body`; answers requests/s, p50 and p99 (ms)
    and the count of non-2xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
    try:
        out = subprocess.run(
            ["wrk", "-t", WRK_THREADS, "-c", str(connections), "-d", f"{seconds}s",
             "--latency", "-s", script.name, f"{url}{path}"],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(label: str) -> float:
        value, unit = re.search(rf"\s{label}\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {
        "rate": rate,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(0) if socket_errors else "",
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def metric_sum(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
        and (line[len(name)] in "{ ")
    )


def main() -> None:
    junction, hello_wasm, hello_manifest = sys.argv[1:4]
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing (scripts/bench.sh installs it with apt)")
    data = tempfile.mkdtemp(prefix="junction-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, JUNCTION_DATA_DIR=data, RUST_LOG="warn")
    # The server's own default limits, except the per-plugin queue width,
    # which would otherwise cap the end-to-end run at 16 deliveries at once.
    server = subprocess.Popen(
        [junction, "serve", "--listen", f"127.0.0.1:{port}", "--plugin-concurrency", "64"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "serve.log"), "w"),
    )
    try:
        wait_until_up(url, server)
        token = open(os.path.join(data, "admin-token")).read().strip()
        subprocess.run(
            [junction, "deploy", hello_wasm, "--manifest", hello_manifest,
             "--url", url, "--token", token],
            check=True, stdout=subprocess.DEVNULL, env=env,
        )
        invoke = {"kind": "hello", "payload": {"n": 1}}
        # Warm up: connections, the pool's slots, the page cache.
        wrk(url, "/v1/plugins/hello/invoke", invoke, token, 16, 2)

        at16 = wrk(url, "/v1/plugins/hello/invoke", invoke, token, 16, DURATION_S)
        at64 = wrk(url, "/v1/plugins/hello/invoke", invoke, token, 64, DURATION_S)
        for result in (at16, at64):
            if result["non_2xx"]:
                sys.exit(f"invoke answered {result['non_2xx']} non-2xx responses")
        figure("invokes of hello, 16 connections (wrk)",
               f"{at16['rate']:.0f}/s, p50 {at16['p50']:.2f} ms, p99 {at16['p99']:.2f} ms",
               "p99 <= 5 ms", "-")
        figure("invokes of hello, 64 connections (wrk)",
               f"{at64['rate']:.0f}/s, p50 {at64['p50']:.2f} ms, p99 {at64['p99']:.2f} ms",
               ">= 25000/s", f"{at64['rate'] / 25000:.2f}x the goal")

        nobody = {"kind": "bench.nobody", "payload": {"n": 1}}
        accepted = wrk(url, "/v1/events", nobody, token, 64, DURATION_S)
        if accepted["non_2xx"]:
            sys.exit(f"events answered {accepted['non_2xx']} non-2xx responses")
        figure("events accepted, no trigger, 64 connections (wrk)",
               f"{accepted['rate']:.0f}/s, p99 {accepted['p99']:.2f} ms",
               ">= 40000/s", f"{accepted['rate'] / 40000:.2f}x the goal")

        # End to end: every event triggers hello; executed per second from
        # the first event to the last delivery done.
        done_before = metric_sum(url, "junction_deliveries_total")
        started = time.monotonic()
        sent = wrk(url, "/v1/events", invoke, token, 64, DURATION_S)
        if sent["non_2xx"]:
            sys.exit(f"events answered {sent['non_2xx']} non-2xx responses")
        target = done_before + sent["requests"]
        deadline = time.monotonic() + 600
        while metric_sum(url, "junction_deliveries_total") < target:
            if time.monotonic() > deadline:
                sys.exit("the queue did not drain within 10 minutes")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        executed = metric_sum(url, "junction_deliveries_total") - done_before
        rate = executed / elapsed
        figure("events executed end to end, hello triggered (wrk, 64 connections)",
               f"{rate:.0f}/s ({executed:.0f} in {elapsed:.1f} s; accepted at {sent['rate']:.0f}/s)",
               ">= 15000/s", f"{rate / 15000:.2f}x the goal")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
