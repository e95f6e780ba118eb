"""The MailChimp Marketing API v3 through the `mailchimp` connection, and
its error conventions (`application/problem+json`, 429 with `Retry-After`)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from junction_sdk import JunctionError, Request, Response, log

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
    request.connection(CONNECTION)
    attempt = 1
    while True:
        response = request.send()
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
    response = send(Request.get(path).query(query or []))
    try:
        return response.json()
    except JunctionError as err:
        raise JunctionError(f"MailChimp GET {path}: unexpected response: {err}") from None
