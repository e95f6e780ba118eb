"""MailChimp ⇄ Zoho CRM sync in Python, the same function as the Rust
`mailchimp-sync`:

* `campaign.sync` `{campaign_id, page_size?}` (and the MCP tool call with
  the same arguments): reads the campaign and its report, reads (the first page, then the
  others several at once with `send_all`) the
  list's members changed since the last successful run (a kv cursor),
  upserts them as Zoho CRM leads in batches of 100, answers a summary.
* `lead.created`: adds or updates the CRM lead as a list subscriber.
* `webhook.mailchimp`: a `campaign` notice syncs that campaign.
"""

from __future__ import annotations

from typing import Any

from junction_sdk import Event, JunctionError, PayloadError, Request, export, kv, log

from . import crm, mailchimp

#: Members fetched per page when the event does not say.
DEFAULT_PAGE_SIZE = 500
#: Member pages requested in one batch; the host keeps at most the plugin's
#: in-flight limit (6 by default) of them in flight.
PAGES_AT_ONCE = 12

#: The tool's arguments: campaign.sync's payload.
CAMPAIGN_SYNC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "CampaignSync",
    "description": "What to sync: a `campaign.sync` payload, and the tool's arguments.",
    "properties": {
        "campaign_id": {"type": "string", "description": "The MailChimp campaign id."},
        "page_size": {
            "type": ["integer", "null"],
            "description": "Members fetched per page (default 500).",
            "minimum": 1,
            "maximum": 1000,
        },
    },
    "required": ["campaign_id"],
}


def handle(event: Event) -> Any:
    if event.kind in ("campaign.sync", "tool.call"):
        request = event.payload()
        if not isinstance(request, dict) or not isinstance(request.get("campaign_id"), str):
            raise PayloadError("the payload needs a string `campaign_id`")
        return sync_campaign(request["campaign_id"], request.get("page_size"))
    if event.kind == "lead.created":
        lead = event.payload()
        if not isinstance(lead, dict):
            raise PayloadError("the lead must be a JSON object")
        return subscribe_lead(lead)
    if event.kind == "webhook.mailchimp":
        body = (event.payload() or {}).get("body") or {}
        kind, campaign_id = body.get("type"), body.get("data[id]")
        if kind == "campaign" and campaign_id:
            return sync_campaign(campaign_id, None)
        raise JunctionError(
            f"the MailChimp webhook sent `{kind or 'nothing'}` without a campaign id; only `campaign` notices are synced"
        )
    raise JunctionError(
        f"mailchimp-sync handles campaign.sync (or its tool call) and lead.created, not `{event.kind}`"
    )


def cursor_key(list_id: str) -> str:
    return f"cursor/{list_id}"


def sync_campaign(campaign_id: str, page_size: int | None) -> dict[str, Any]:
    page_size = max(1, min(int(page_size or DEFAULT_PAGE_SIZE), 1000))
    campaign = mailchimp.get(f"/campaigns/{campaign_id}")
    report = mailchimp.get(f"/reports/{campaign['id']}")
    recipients = campaign.get("recipients", {})
    settings = campaign.get("settings", {})
    list_id = recipients["list_id"]

    previous_cursor = kv.get_json(cursor_key(list_id))
    next_cursor = previous_cursor
    leads: list[dict[str, Any]] = []
    members_path = f"/lists/{list_id}/members"

    def query_at(offset: int) -> list[tuple[str, str]]:
        query = [("count", str(page_size)), ("offset", str(offset))]
        if previous_cursor is not None:
            query.append(("since_last_changed", previous_cursor))
        return query

    # The first page says how many members there are; the other pages are
    # then fetched several at once.
    first = mailchimp.get(members_path, query_at(0))
    total = first.get("total_items", 0)
    later = list(range(page_size, total, page_size)) if first.get("members") else []
    documents = [first]
    for start in range(0, len(later), PAGES_AT_ONCE):
        batch = later[start : start + PAGES_AT_ONCE]
        documents += mailchimp.get_each(members_path, [query_at(offset) for offset in batch])
    for page in documents:
        for member in page.get("members", []):
            changed = member.get("last_changed")
            if changed and (next_cursor is None or changed > next_cursor):
                next_cursor = changed
            leads.append(lead_from_member(member, settings.get("title", "")))
    pages = len(documents)
    log.info(f"campaign {campaign['id']}: {len(leads)} changed members on list {list_id} in {pages} pages")

    totals = crm.UpsertTotals()
    crm.upsert_leads(leads, totals)
    # Advance the cursor only when every record landed, so failed ones are
    # picked up again by the next run.
    cursor_advanced = totals.failed == 0 and next_cursor != previous_cursor
    if cursor_advanced and next_cursor is not None:
        kv.set_json(cursor_key(list_id), next_cursor)
    if totals.failed:
        log.warn(f"{totals.failed} leads were refused by Zoho CRM; the cursor stays put")

    bounces, opens, clicks = report.get("bounces", {}), report.get("opens", {}), report.get("clicks", {})
    return {
        "campaign": {
            "id": campaign["id"],
            "title": settings.get("title", ""),
            "subject_line": settings.get("subject_line", ""),
            "status": campaign.get("status", ""),
            "emails_sent": campaign.get("emails_sent", 0),
            "send_time": campaign.get("send_time"),
            "list_id": list_id,
            "list_name": recipients.get("list_name", ""),
            "recipient_count": recipients.get("recipient_count", 0),
        },
        "report": {
            "emails_sent": report.get("emails_sent", 0),
            "unsubscribed": report.get("unsubscribed", 0),
            "hard_bounces": bounces.get("hard_bounces", 0),
            "soft_bounces": bounces.get("soft_bounces", 0),
            "opens_total": opens.get("opens_total", 0),
            "unique_opens": opens.get("unique_opens", 0),
            "open_rate": opens.get("open_rate", 0.0),
            "clicks_total": clicks.get("clicks_total", 0),
            "unique_clicks": clicks.get("unique_clicks", 0),
            "click_rate": clicks.get("click_rate", 0.0),
        },
        "members": {"fetched": len(leads), "pages": pages, "incremental": previous_cursor is not None},
        "leads": {
            "created": totals.created,
            "updated": totals.updated,
            "failed": totals.failed,
            "batches": totals.batches,
            "errors": totals.errors,
        },
        "cursor": {"previous": previous_cursor, "next": next_cursor, "advanced": cursor_advanced},
    }


def merge_field(member: dict[str, Any], name: str) -> str | None:
    value = (member.get("merge_fields") or {}).get(name)
    return value if isinstance(value, str) and value else None


def lead_from_member(member: dict[str, Any], campaign_title: str) -> dict[str, Any]:
    email = member["email_address"].strip()
    lead: dict[str, Any] = {
        # Last_Name is mandatory in Zoho CRM; fall back to the mailbox name.
        "Last_Name": merge_field(member, "LNAME") or email.split("@")[0],
        "Email": email,
        "Lead_Source": "MailChimp",
        "Description": f"Subscriber ({member.get('status', '')}) of MailChimp campaign \"{campaign_title}\"",
    }
    first = merge_field(member, "FNAME")
    if first is not None:
        lead["First_Name"] = first
    return lead


def subscribe_lead(lead: dict[str, Any]) -> dict[str, Any]:
    email = lead.get("Email")
    if not isinstance(email, str) or "@" not in email:
        raise JunctionError("the lead has no valid `Email`")
    list_id = lead.get("list_id") or kv.get_json("config/list_id")
    if not list_id:
        raise JunctionError(
            "no MailChimp list: send `list_id` with the lead or store it under kv `config/list_id`"
        )
    subscriber = mailchimp.subscriber_hash(email)
    body = {
        "email_address": email,
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": lead.get("First_Name") or "", "LNAME": lead.get("Last_Name") or ""},
    }
    member = mailchimp.send(Request.put(f"/lists/{list_id}/members/{subscriber}").json(body)).json()
    log.info(f"lead {email} is {member.get('status')} on list {list_id}")
    return {"list_id": list_id, "subscriber_hash": subscriber, "id": member.get("id"), "status": member.get("status")}


WitWorld = export(handle, tool_input_schema=CAMPAIGN_SYNC_SCHEMA)
