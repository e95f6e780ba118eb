//! A mock Zoho CRM v7 (paths under `/crm/v7`, as the catalog's base URL
//! `{api_domain}/crm/v7` has them): lead inserts and upserts with per-record results (`insert` /
//! `update` / errors such as `MANDATORY_NOT_FOUND`), `Zoho-oauthtoken`
//! authentication and Zoho's error shape.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::server::{Journal, TokenCheck, fixed_token, serve};

pub struct MockCrm {
    pub addr: SocketAddr,
    pub journal: Journal,
    /// Leads by email.
    pub leads: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Emails the CRM refuses with `INVALID_DATA`.
    pub rejected: Arc<Mutex<BTreeSet<String>>>,
}

#[derive(Clone)]
struct AppState {
    token: TokenCheck,
    journal: Journal,
    leads: Arc<Mutex<BTreeMap<String, Value>>>,
    rejected: Arc<Mutex<BTreeSet<String>>>,
}

impl MockCrm {
    pub async fn start(token: &str) -> Self {
        Self::start_with(fixed_token(token)).await
    }

    /// Accepts the `Zoho-oauthtoken` tokens `check` approves.
    pub async fn start_with(check: TokenCheck) -> Self {
        let state = AppState {
            token: check,
            journal: Journal::default(),
            leads: Arc::default(),
            rejected: Arc::default(),
        };
        let journal = state.journal.clone();
        let leads = state.leads.clone();
        let rejected = state.rejected.clone();
        let addr = serve(Router::new().fallback(handle).with_state(state)).await;
        MockCrm {
            addr,
            journal,
            leads,
            rejected,
        }
    }

    /// What the connection's `api_domain` would be.
    pub fn api_domain(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn lead_count(&self) -> usize {
        self.leads.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message, "status": "error", "details": {} })),
    )
        .into_response()
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.journal.record(&method, &uri, &headers, &body);
    let accepted = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
        .is_some_and(|token| (state.token)(token));
    if !accepted {
        return error(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "invalid oauth token",
        );
    }
    match (method.as_str(), uri.path()) {
        ("POST", path @ ("/crm/v7/Leads/upsert" | "/crm/v7/Leads")) => {
            // An insert refuses an email already there; an upsert updates it.
            let upsert = path.ends_with("/upsert");
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return error(StatusCode::BAD_REQUEST, "INVALID_DATA", "body is not JSON");
            };
            let Some(records) = request["data"].as_array() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MANDATORY_NOT_FOUND",
                    "data is missing",
                );
            };
            if records.len() > 100 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "LIMIT_EXCEEDED",
                    "at most 100 records per call",
                );
            }
            let rejected = state
                .rejected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let mut leads = state.leads.lock().unwrap_or_else(|p| p.into_inner());
            let mut results = Vec::new();
            let mut any_error = false;
            for record in records {
                let email = record["Email"].as_str().unwrap_or_default().to_lowercase();
                if record["Last_Name"].as_str().is_none_or(str::is_empty) {
                    any_error = true;
                    results.push(json!({ "code": "MANDATORY_NOT_FOUND", "details": { "api_name": "Last_Name" }, "message": "required field not found", "status": "error" }));
                    continue;
                }
                if rejected.contains(&email) {
                    any_error = true;
                    results.push(json!({ "code": "INVALID_DATA", "details": { "api_name": "Email" }, "message": "invalid data", "status": "error" }));
                    continue;
                }
                let existed = leads.contains_key(&email);
                if existed && !upsert {
                    any_error = true;
                    results.push(json!({ "code": "DUPLICATE_DATA", "details": { "api_name": "Email" }, "message": "duplicate data", "status": "error" }));
                    continue;
                }
                let id = format!("{}", 4_000_000 + leads.len() as u64);
                let id = leads
                    .get(&email)
                    .and_then(|l| l["id"].as_str().map(str::to_owned))
                    .unwrap_or(id);
                let mut stored = record.clone();
                stored["id"] = json!(id);
                leads.insert(email, stored);
                results.push(json!({
                    "code": "SUCCESS",
                    "duplicate_field": if existed { json!("Email") } else { Value::Null },
                    "action": if existed { "update" } else { "insert" },
                    "details": { "id": id, "Modified_Time": "2026-11-28T10:00:00+00:00" },
                    "message": if existed { "record updated" } else { "record added" },
                    "status": "success",
                }));
            }
            let status = if any_error {
                StatusCode::MULTI_STATUS
            } else {
                StatusCode::OK
            };
            (status, axum::Json(json!({ "data": results }))).into_response()
        }
        ("GET", path) if path.starts_with("/crm/v7/Campaigns/") => {
            let id = path.trim_start_matches("/crm/v7/Campaigns/");
            axum::Json(
                json!({ "data": [{ "id": id, "Campaign_Name": "November", "Status": "Active" }] }),
            )
            .into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "INVALID_URL_PATTERN",
            "Please check if the URL trying to access is a correct one",
        ),
    }
}
