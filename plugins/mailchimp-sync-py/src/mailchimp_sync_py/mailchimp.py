"""The MailChimp Marketing API v3 through the `mailchimp` connection, and
its error conventions (`application/problem+json`, 429 with `Retry-After`)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from junction_sdk import HttpError, JunctionError, Request, Response, log, send_all

CONNECTION = "mailchimp"
#: Attempts for one request when MailChimp answers 429.
MAX_ATTEMPTS = 4
#: The longest `Retry-After` honoured, in seconds; longer waits fail the run.
MAX_RETRY_AFTER = 10


def subscriber_hash(email: str) -> str:
    """MD5 of the lower-cased email address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def send(request: Request) -> Response:
    """Sends `request`, waiting and retrying on 429 as `Retry-After` says,
    and turns error responses into readable errors."""
    return settle(request.connection(CONNECTION), None)


def settle(request: Request, first: Response | None) -> Response:
    """`request`'s final response: `first` (when it was already sent, as
    part of a batch) or its own send, then waits and retries on 429 as
    `Retry-After` says."""
    attempt = 1
    while True:
        response = first if first is not None else request.send()
        first = None
        if response.status == 429 and attempt < MAX_ATTEMPTS:
            try:
                wait = int((response.header("retry-after") or "").strip())
            except ValueError:
                wait = attempt
            if wait > MAX_RETRY_AFTER:
                raise JunctionError(
                    f"MailChimp asked to wait {wait} s before retrying {request.url}, longer than this run waits"
                )
            log.warn(
                f"MailChimp rate limit on {request.url} (attempt {attempt}); retrying in {wait} s"
            )
            time.sleep(wait)
            attempt += 1
            continue
        if response.is_success:
            return response
        raise problem_error(request, response)


def problem_error(request: Request, response: Response) -> JunctionError:
    what = f"MailChimp {request.method} {request.url}"
    try:
        problem = response.json()
    except JunctionError:
        problem = None
    if isinstance(problem, dict) and problem.get("title"):
        status = problem.get("status") or response.status
        return JunctionError(
            f"{what} failed with {status}: {problem['title']}: {problem.get('detail', '')}"
        )
    return JunctionError(f"{what} failed with HTTP {response.status}: {response.text()}")


def get(path: str, query: list[tuple[str, str]] | None = None) -> Any:
    """GET a JSON document."""
    return parse(path, send(Request.get(path).query(query or [])))


def get_each(path: str, queries: list[list[tuple[str, str]]]) -> list[Any]:
    """GETs `path` once per query, all at once (the host keeps up to the
    plugin's in-flight limit in flight), the documents in the order of the
    queries; one answered 429 is retried on its own."""
    requests = [Request.get(path).query(query).connection(CONNECTION) for query in queries]
    documents = []
    for request, answer in zip(requests, send_all(requests)):
        if isinstance(answer, HttpError):
            raise answer
        documents.append(parse(path, settle(request, answer)))
    return documents


def parse(path: str, response: Response) -> Any:
    try:
        return response.json()
    except JunctionError as err:
        raise JunctionError(f"MailChimp GET {path}: unexpected response: {err}") from None
