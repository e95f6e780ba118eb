"""Zoho CRM v2 through the `zohocrm` connection: lead upserts in batches of
at most 100, with per-record results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from junction_sdk import JunctionError, Request

CONNECTION = "zohocrm"
#: Zoho CRM takes at most this many records per call.
MAX_BATCH = 100


@dataclass
class UpsertTotals:
    created: int = 0
    updated: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


def upsert_leads(leads: list[dict[str, Any]], totals: UpsertTotals) -> None:
    """Upserts leads (deduplicated on Email) in batches of at most 100."""
    for start in range(0, len(leads), MAX_BATCH):
        batch = leads[start : start + MAX_BATCH]
        body = {"data": batch, "duplicate_check_fields": ["Email"], "trigger": []}
        response = Request.post("/Leads/upsert").connection(CONNECTION).json(body).send()
        # 2xx, and 207 for mixed results (Zoho's multi-status), carry per-record results.
        if not response.is_success:
            try:
                error = response.json()
                reason = f"{error.get('code', '')}: {error.get('message', '')}"
            except JunctionError:
                reason = response.text()
            raise JunctionError(f"Zoho CRM upsert failed with HTTP {response.status}: {reason}")
        try:
            results = response.json()["data"]
        except (JunctionError, KeyError, TypeError) as err:
            raise JunctionError(f"Zoho CRM upsert: unexpected response: {err}") from None
        totals.batches += 1
        for lead, result in zip(batch, results):
            if result.get("status") == "success":
                if result.get("action") == "update":
                    totals.updated += 1
                else:
                    totals.created += 1
            else:
                totals.failed += 1
                totals.errors.append(
                    {
                        "email": lead["Email"],
                        "code": result.get("code", ""),
                        "message": result.get("message", ""),
                    }
                )
