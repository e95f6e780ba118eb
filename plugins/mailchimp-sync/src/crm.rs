//! Zoho CRM v2 through the `zohocrm` connection: lead upserts in batches of
//! at most 100, with per-record results.

use junction_sdk::{Error, Request, Result};
use serde::{Deserialize, Serialize};

/// The connection's link name.
pub const CONNECTION: &str = "zohocrm";
/// Zoho CRM takes at most this many records per call.
pub const MAX_BATCH: usize = 100;

/// A lead as Zoho CRM wants it.
#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    #[serde(rename = "Last_Name")]
    pub last_name: String,
    #[serde(rename = "First_Name", skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(rename = "Email")]
    pub email: String,
    #[serde(rename = "Lead_Source")]
    pub lead_source: String,
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UpsertResponse {
    data: Vec<RecordResult>,
}

#[derive(Debug, Deserialize)]
struct RecordResult {
    #[serde(default)]
    code: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
}

/// A record the CRM refused.
#[derive(Debug, Clone, Serialize)]
pub struct RecordError {
    pub email: String,
    pub code: String,
    pub message: String,
}

/// Counts from upserting leads.
#[derive(Debug, Default, Clone, Serialize)]
pub struct UpsertTotals {
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
    pub batches: u64,
    pub errors: Vec<RecordError>,
}

/// Zoho's error body for a whole request.
#[derive(Debug, Deserialize)]
struct CrmError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Upserts leads (deduplicated on Email) in batches of at most 100.
pub fn upsert_leads(leads: &[Lead], totals: &mut UpsertTotals) -> Result<()> {
    for batch in leads.chunks(MAX_BATCH) {
        let body = serde_json::json!({
            "data": batch,
            "duplicate_check_fields": ["Email"],
            "trigger": [],
        });
        let response = Request::post("/Leads/upsert")
            .connection(CONNECTION)
            .json(&body)?
            .send()?;
        // 2xx, and 207 for mixed results (Zoho's multi-status), carry per-record results.
        if !response.is_success() {
            let reason = response
                .json::<CrmError>()
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_else(|_| response.text());
            return Err(Error::msg(format!(
                "Zoho CRM upsert failed with HTTP {}: {reason}",
                response.status()
            )));
        }
        let parsed: UpsertResponse = response
            .json()
            .map_err(|err| Error::msg(format!("Zoho CRM upsert: unexpected response: {err}")))?;
        totals.batches += 1;
        for (lead, result) in batch.iter().zip(parsed.data) {
            if result.status == "success" {
                match result.action.as_deref() {
                    Some("update") => totals.updated += 1,
                    _ => totals.created += 1,
                }
            } else {
                totals.failed += 1;
                totals.errors.push(RecordError {
                    email: lead.email.clone(),
                    code: result.code,
                    message: result.message,
                });
            }
        }
    }
    Ok(())
}
