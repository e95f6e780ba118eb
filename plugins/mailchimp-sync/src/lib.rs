//! MailChimp ⇄ Zoho CRM sync, the seed's example custom function.
//!
//! * `campaign.sync` `{campaign_id, page_size?}`: reads the campaign and its
//!   report from MailChimp, reads the campaign list's members (the first
//!   page, then the others several at once with `send_all`; only
//!   those changed since the last successful run, using a kv cursor), upserts
//!   them as Zoho CRM leads in batches of 100, and returns a summary.
//! * `lead.created` (a CRM lead, plus `list_id` or a stored `config/list_id`):
//!   adds or updates the lead as a subscriber of the MailChimp list.
//! * `webhook.mailchimp`: MailChimp's own webhook (form-encoded, delivered by
//!   the host to `POST /hooks/mailchimp-sync/mailchimp/<secret>`); a
//!   `campaign` notice (sent when a campaign goes out) syncs that campaign.

mod crm;
mod mailchimp;

use junction_sdk::{Error, Event, Request, Result, json};
use serde::Deserialize;

/// Member pages requested in one batch; the host keeps at most the
/// plugin's in-flight limit (6 by default) of them in flight.
const PAGES_AT_ONCE: usize = 12;

/// Members fetched per page when the event does not say.
const DEFAULT_PAGE_SIZE: u64 = 500;

/// What to sync: a `campaign.sync` payload, and the tool's arguments (the
/// tool's input schema is derived from this type).
#[derive(Deserialize, junction_sdk::tool::JsonSchema)]
#[schemars(crate = "junction_sdk::tool::schemars")]
struct CampaignSync {
    /// The MailChimp campaign id.
    campaign_id: String,
    /// Members fetched per page (default 500).
    #[schemars(range(min = 1, max = 1000))]
    page_size: Option<u64>,
}

#[derive(Deserialize)]
struct CrmLead {
    #[serde(rename = "Email")]
    email: Option<String>,
    #[serde(rename = "First_Name")]
    first_name: Option<String>,
    #[serde(rename = "Last_Name")]
    last_name: Option<String>,
    list_id: Option<String>,
}

fn handle(event: Event) -> Result<serde_json::Value> {
    match event.kind.as_str() {
        // An agent's tool call carries the same arguments.
        "campaign.sync" | "tool.call" => sync_campaign(event.payload()?),
        "lead.created" => subscribe_lead(event.payload()?),
        "webhook.mailchimp" => {
            let hook: serde_json::Value = event.payload()?;
            let body = &hook["body"];
            match (body["type"].as_str(), body["data[id]"].as_str()) {
                (Some("campaign"), Some(id)) => sync_campaign(CampaignSync {
                    campaign_id: id.to_owned(),
                    page_size: None,
                }),
                (kind, _) => Err(Error::msg(format!(
                    "the MailChimp webhook sent `{}` without a campaign id; only `campaign` notices are synced",
                    kind.unwrap_or("nothing")
                ))),
            }
        }
        other => Err(Error::msg(format!(
            "mailchimp-sync handles campaign.sync (or its tool call) and lead.created, not `{other}`"
        ))),
    }
}

junction_sdk::export!(handle, tool_input = CampaignSync);

fn cursor_key(list_id: &str) -> String {
    format!("cursor/{list_id}")
}

fn sync_campaign(request: CampaignSync) -> Result<serde_json::Value> {
    let page_size = request
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, 1000);
    let campaign: mailchimp::Campaign =
        mailchimp::get(&format!("/campaigns/{}", request.campaign_id), &[])?;
    let report: mailchimp::Report = mailchimp::get(&format!("/reports/{}", campaign.id), &[])?;
    let list_id = campaign.recipients.list_id.clone();

    let previous_cursor: Option<String> = junction_sdk::kv::get_json(&cursor_key(&list_id))?;
    let mut next_cursor = previous_cursor.clone();
    let mut leads = Vec::new();
    let members_path = format!("/lists/{list_id}/members");
    let query_at = |offset: u64| {
        let mut query = vec![
            ("count", page_size.to_string()),
            ("offset", offset.to_string()),
        ];
        if let Some(since) = &previous_cursor {
            query.push(("since_last_changed", since.clone()));
        }
        query
    };
    // The first page says how many members there are; the other pages are
    // then fetched several at once.
    let first: mailchimp::MembersPage = mailchimp::get(&members_path, &query_at(0))?;
    let later_offsets: Vec<u64> = if first.members.is_empty() {
        Vec::new()
    } else {
        (1..)
            .map(|page| page * page_size)
            .take_while(|offset| *offset < first.total_items)
            .collect()
    };
    let mut pages = 1u64;
    let mut collect = |page: mailchimp::MembersPage| {
        for member in page.members {
            if let Some(changed) = &member.last_changed
                && next_cursor.as_ref().is_none_or(|c| changed > c)
            {
                next_cursor = Some(changed.clone());
            }
            leads.push(lead_from_member(&member, &campaign));
        }
    };
    collect(first);
    for offsets in later_offsets.chunks(PAGES_AT_ONCE) {
        let queries: Vec<_> = offsets.iter().map(|offset| query_at(*offset)).collect();
        let batch: Vec<mailchimp::MembersPage> = mailchimp::get_each(&members_path, &queries)?;
        for page in batch {
            pages += 1;
            collect(page);
        }
    }
    junction_sdk::info!(
        "campaign {}: {} changed members on list {list_id} in {pages} pages",
        campaign.id,
        leads.len()
    );

    let mut totals = crm::UpsertTotals::default();
    crm::upsert_leads(&leads, &mut totals)?;
    // Advance the cursor only when every record landed, so failed ones are
    // picked up again by the next run.
    let cursor_advanced = totals.failed == 0 && next_cursor != previous_cursor;
    if cursor_advanced && let Some(cursor) = &next_cursor {
        junction_sdk::kv::set_json(&cursor_key(&list_id), cursor)?;
    }
    if totals.failed > 0 {
        junction_sdk::warn!(
            "{} leads were refused by Zoho CRM; the cursor stays put",
            totals.failed
        );
    }

    Ok(json!({
        "campaign": {
            "id": campaign.id,
            "title": campaign.settings.title,
            "subject_line": campaign.settings.subject_line,
            "status": campaign.status,
            "emails_sent": campaign.emails_sent,
            "send_time": campaign.send_time,
            "list_id": list_id,
            "list_name": campaign.recipients.list_name,
            "recipient_count": campaign.recipients.recipient_count,
        },
        "report": {
            "emails_sent": report.emails_sent,
            "unsubscribed": report.unsubscribed,
            "hard_bounces": report.bounces.hard_bounces,
            "soft_bounces": report.bounces.soft_bounces,
            "opens_total": report.opens.opens_total,
            "unique_opens": report.opens.unique_opens,
            "open_rate": report.opens.open_rate,
            "clicks_total": report.clicks.clicks_total,
            "unique_clicks": report.clicks.unique_clicks,
            "click_rate": report.clicks.click_rate,
        },
        "members": { "fetched": leads.len(), "pages": pages, "incremental": previous_cursor.is_some() },
        "leads": {
            "created": totals.created,
            "updated": totals.updated,
            "failed": totals.failed,
            "batches": totals.batches,
            "errors": totals.errors,
        },
        "cursor": { "previous": previous_cursor, "next": next_cursor, "advanced": cursor_advanced },
    }))
}

fn lead_from_member(member: &mailchimp::Member, campaign: &mailchimp::Campaign) -> crm::Lead {
    let email = member.email_address.trim().to_owned();
    let last_name = member
        .merge_field("LNAME")
        .map(str::to_owned)
        // Last_Name is mandatory in Zoho CRM; fall back to the mailbox name.
        .unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_owned());
    crm::Lead {
        last_name,
        first_name: member.merge_field("FNAME").map(str::to_owned),
        email,
        lead_source: "MailChimp".to_owned(),
        description: Some(format!(
            "Subscriber ({}) of MailChimp campaign \"{}\"",
            member.status, campaign.settings.title
        )),
    }
}

fn subscribe_lead(lead: CrmLead) -> Result<serde_json::Value> {
    let email = lead
        .email
        .filter(|e| e.contains('@'))
        .ok_or_else(|| Error::msg("the lead has no valid `Email`"))?;
    let list_id = match lead.list_id {
        Some(id) => id,
        None => junction_sdk::kv::get_json::<String>("config/list_id")?.ok_or_else(|| {
            Error::msg("no MailChimp list: send `list_id` with the lead or store it under kv `config/list_id`")
        })?,
    };
    let hash = mailchimp::subscriber_hash(&email);
    let body = json!({
        "email_address": email,
        "status_if_new": "subscribed",
        "merge_fields": {
            "FNAME": lead.first_name.unwrap_or_default(),
            "LNAME": lead.last_name.unwrap_or_default(),
        },
    });
    let response =
        mailchimp::send(Request::put(format!("/lists/{list_id}/members/{hash}")).json(&body)?)?;
    let member: serde_json::Value = response.json()?;
    junction_sdk::info!("lead {email} is {} on list {list_id}", member["status"]);
    Ok(json!({
        "list_id": list_id,
        "subscriber_hash": hash,
        "id": member["id"],
        "status": member["status"],
    }))
}
