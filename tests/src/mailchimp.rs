//! A mock MailChimp Marketing API v3 (under `/3.0`): campaigns, reports,
//! paged list members with `since_last_changed`, member upserts by
//! subscriber hash, `application/problem+json` errors and 429 rate limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::server::{Journal, TokenCheck, fixed_token, query_pairs, serve};

#[derive(Debug, Clone)]
pub struct Member {
    pub email: String,
    pub status: String,
    pub first_name: String,
    pub last_name: String,
    pub last_changed: String,
}

impl Member {
    pub fn new(email: &str, first: &str, last: &str, last_changed: &str) -> Self {
        Member {
            email: email.into(),
            status: "subscribed".into(),
            first_name: first.into(),
            last_name: last.into(),
            last_changed: last_changed.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": subscriber_hash(&self.email),
            "email_address": self.email,
            "status": self.status,
            "merge_fields": { "FNAME": self.first_name, "LNAME": self.last_name },
            "last_changed": self.last_changed,
        })
    }
}

pub fn subscriber_hash(email: &str) -> String {
    hex::encode(Md5::digest(email.to_lowercase().as_bytes()))
}

#[derive(Default)]
pub struct Data {
    pub campaigns: BTreeMap<String, Value>,
    pub reports: BTreeMap<String, Value>,
    pub lists: BTreeMap<String, Vec<Member>>,
}

pub struct MockMailchimp {
    pub addr: SocketAddr,
    pub journal: Journal,
    pub data: Arc<Mutex<Data>>,
    /// Member-page requests still to answer with 429.
    pub rate_limited: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct AppState {
    token: TokenCheck,
    api_key: String,
    journal: Journal,
    data: Arc<Mutex<Data>>,
    rate_limited: Arc<AtomicUsize>,
}

impl MockMailchimp {
    /// Accepts `Authorization: Bearer {token}` (OAuth) or HTTP Basic with
    /// `api_key` as the password.
    pub async fn start(token: &str, api_key: &str) -> Self {
        Self::start_with(fixed_token(token), api_key).await
    }

    /// Accepts bearer tokens `check` approves (e.g. those a fake OAuth
    /// provider issued), or HTTP Basic with `api_key`.
    pub async fn start_with(check: TokenCheck, api_key: &str) -> Self {
        let state = AppState {
            token: check,
            api_key: api_key.into(),
            journal: Journal::default(),
            data: Arc::new(Mutex::new(Data::default())),
            rate_limited: Arc::new(AtomicUsize::new(0)),
        };
        let mock = MockMailchimp {
            addr: "127.0.0.1:0".parse().expect("addr"),
            journal: state.journal.clone(),
            data: state.data.clone(),
            rate_limited: state.rate_limited.clone(),
        };
        let addr = serve(Router::new().fallback(handle).with_state(state)).await;
        MockMailchimp { addr, ..mock }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/3.0", self.addr)
    }

    /// A sent campaign on `list_id` with its report, and the list's members.
    pub fn add_campaign(&self, id: &str, list_id: &str, members: Vec<Member>) {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let count = members.len();
        data.campaigns.insert(
            id.into(),
            json!({
                "id": id, "type": "regular", "status": "sent", "emails_sent": count,
                "send_time": "2026-11-20T09:00:00+00:00",
                "recipients": { "list_id": list_id, "list_name": "Newsletter", "recipient_count": count },
                "settings": { "subject_line": "November news", "title": "November", "from_name": "Acme", "reply_to": "news@acme.test" },
                "report_summary": { "opens": 120, "unique_opens": 80, "open_rate": 0.4, "clicks": 30, "click_rate": 0.15 },
            }),
        );
        data.reports.insert(
            id.into(),
            json!({
                "id": id, "campaign_title": "November", "list_id": list_id, "emails_sent": count,
                "unsubscribed": 2, "bounces": { "hard_bounces": 1, "soft_bounces": 3 },
                "opens": { "opens_total": 120, "unique_opens": 80, "open_rate": 0.4 },
                "clicks": { "clicks_total": 30, "unique_clicks": 20, "click_rate": 0.15 },
            }),
        );
        data.lists.insert(list_id.into(), members);
    }

    /// Changes a member's name and `last_changed`.
    pub fn touch_member(&self, list_id: &str, email: &str, last_name: &str, last_changed: &str) {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(member) = data
            .lists
            .get_mut(list_id)
            .and_then(|l| l.iter_mut().find(|m| m.email == email))
        {
            member.last_name = last_name.into();
            member.last_changed = last_changed.into();
        }
    }
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title, "status": status.as_u16(), "detail": detail, "instance": "mock-instance",
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn authorised(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return (state.token)(token);
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded);
        return text
            .split_once(':')
            .is_some_and(|(_, key)| key == state.api_key);
    }
    false
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.journal.record(&method, &uri, &headers, &body);
    if !authorised(&state, &headers) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        );
    }
    let query: BTreeMap<String, String> = query_pairs(&uri).into_iter().collect();
    let Some(path) = uri.path().strip_prefix("/3.0/") else {
        return problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        );
    };
    let parts: Vec<&str> = path.split('/').collect();
    let mut data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["campaigns", id]) => match data.campaigns.get(*id) {
            Some(c) => axum::Json(c.clone()).into_response(),
            None => problem(
                StatusCode::NOT_FOUND,
                "Resource Not Found",
                "The requested resource could not be found.",
            ),
        },
        ("GET", ["reports", id]) => match data.reports.get(*id) {
            Some(r) => axum::Json(r.clone()).into_response(),
            None => problem(
                StatusCode::NOT_FOUND,
                "Resource Not Found",
                "The requested resource could not be found.",
            ),
        },
        ("GET", ["lists", list, "members"]) => {
            if state
                .rate_limited
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too Many Requests",
                    "You have exceeded the limit of 10 simultaneous connections.",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, "1".parse().expect("header"));
                return response;
            }
            let Some(members) = data.lists.get(*list) else {
                return problem(
                    StatusCode::NOT_FOUND,
                    "Resource Not Found",
                    "The requested resource could not be found.",
                );
            };
            let count: usize = query
                .get("count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(10)
                .min(1000);
            let offset: usize = query
                .get("offset")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            // Compared as instants, as MailChimp does: `2026-11-01T10:00:00+01:00`
            // and `2026-11-01T09:00:00Z` are the same time.
            let instant = |text: &str| chrono::DateTime::parse_from_rfc3339(text).ok();
            let since = match query.get("since_last_changed").map(|s| (s, instant(s))) {
                Some((text, None)) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "Invalid Resource",
                        &format!("since_last_changed `{text}` is not an ISO 8601 time"),
                    );
                }
                Some((_, Some(at))) => Some(at),
                None => None,
            };
            let matching: Vec<&Member> = members
                .iter()
                .filter(|m| {
                    since.is_none_or(|since| instant(&m.last_changed).is_some_and(|at| at > since))
                })
                .collect();
            let page: Vec<Value> = matching
                .iter()
                .skip(offset)
                .take(count)
                .map(|m| m.to_json())
                .collect();
            axum::Json(json!({ "members": page, "list_id": list, "total_items": matching.len() }))
                .into_response()
        }
        ("PUT", ["lists", list, "members", hash]) => {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "JSON Schema Error",
                    "The request body is not JSON.",
                );
            };
            let Some(email) = request["email_address"].as_str() else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "Invalid Resource",
                    "email_address is required.",
                );
            };
            if subscriber_hash(email) != *hash {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "Invalid Resource",
                    "The subscriber hash does not match the email address.",
                );
            }
            let list = data.lists.entry((*list).to_owned()).or_default();
            let first = request["merge_fields"]["FNAME"]
                .as_str()
                .unwrap_or_default();
            let last = request["merge_fields"]["LNAME"]
                .as_str()
                .unwrap_or_default();
            let member = match list
                .iter_mut()
                .find(|m| m.email.eq_ignore_ascii_case(email))
            {
                Some(existing) => {
                    existing.first_name = first.into();
                    existing.last_name = last.into();
                    existing.clone()
                }
                None => {
                    let status = request["status_if_new"].as_str().unwrap_or("pending");
                    let mut member = Member::new(email, first, last, "2026-11-28T00:00:00+00:00");
                    member.status = status.into();
                    list.push(member.clone());
                    member
                }
            };
            axum::Json(member.to_json()).into_response()
        }
        _ => problem(
            StatusCode::NOT_FOUND,
            "Resource Not Found",
            "The requested resource could not be found.",
        ),
    }
}
