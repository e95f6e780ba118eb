//! The MailChimp Marketing API v3, through the `mailchimp` connection:
//! campaigns, reports, list members, and its error conventions
//! (`application/problem+json`, 429 with `Retry-After`).

use std::time::Duration;

use junction_sdk::{Error, Request, Response, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The connection's link name.
pub const CONNECTION: &str = "mailchimp";
/// Attempts for one request when MailChimp answers 429.
const MAX_ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured; longer waits fail the run instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub struct Campaign {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub emails_sent: u64,
    pub send_time: Option<String>,
    pub recipients: Recipients,
    #[serde(default)]
    pub settings: Settings,
}

#[derive(Debug, Deserialize)]
pub struct Recipients {
    pub list_id: String,
    #[serde(default)]
    pub list_name: String,
    #[serde(default)]
    pub recipient_count: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub subject_line: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Deserialize)]
pub struct Report {
    #[serde(default)]
    pub emails_sent: u64,
    #[serde(default)]
    pub unsubscribed: u64,
    #[serde(default)]
    pub bounces: Bounces,
    #[serde(default)]
    pub opens: Opens,
    #[serde(default)]
    pub clicks: Clicks,
}

#[derive(Debug, Default, Deserialize)]
pub struct Bounces {
    #[serde(default)]
    pub hard_bounces: u64,
    #[serde(default)]
    pub soft_bounces: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Opens {
    #[serde(default)]
    pub opens_total: u64,
    #[serde(default)]
    pub unique_opens: u64,
    #[serde(default)]
    pub open_rate: f64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Clicks {
    #[serde(default)]
    pub clicks_total: u64,
    #[serde(default)]
    pub unique_clicks: u64,
    #[serde(default)]
    pub click_rate: f64,
}

#[derive(Debug, Deserialize)]
pub struct MembersPage {
    pub members: Vec<Member>,
    #[serde(default)]
    pub total_items: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub email_address: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub merge_fields: serde_json::Map<String, serde_json::Value>,
    pub last_changed: Option<String>,
}

impl Member {
    pub fn merge_field(&self, name: &str) -> Option<&str> {
        self.merge_fields
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// MailChimp's error body (RFC 7807 problem details).
#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    status: u16,
}

/// The subscriber hash: MD5 of the lower-cased email address.
pub fn subscriber_hash(email: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(email.trim().to_lowercase().as_bytes()))
}

/// Sends `request`, waiting and retrying on 429 as `Retry-After` says, and
/// turns error responses into readable errors.
pub fn send(request: Request) -> Result<Response> {
    settle(request.connection(CONNECTION), None)
}

/// `request`'s final response: `first` (when it was already sent, as part
/// of a batch) or its own send, then waits and retries on 429 as
/// `Retry-After` says.
fn settle(request: Request, mut first: Option<Response>) -> Result<Response> {
    let mut attempt = 1;
    loop {
        let response = match first.take() {
            Some(response) => response,
            None => request.send()?,
        };
        if response.status() == 429 && attempt < MAX_ATTEMPTS {
            let wait = response
                .header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(1) * attempt);
            if wait > MAX_RETRY_AFTER {
                return Err(Error::msg(format!(
                    "MailChimp asked to wait {} s before retrying {}, longer than this run waits",
                    wait.as_secs(),
                    request.url()
                )));
            }
            junction_sdk::warn!(
                "MailChimp rate limit on {} (attempt {attempt}); retrying in {} s",
                request.url(),
                wait.as_secs()
            );
            std::thread::sleep(wait);
            attempt += 1;
            continue;
        }
        if response.is_success() {
            return Ok(response);
        }
        return Err(problem_error(&request, &response));
    }
}

fn problem_error(request: &Request, response: &Response) -> Error {
    let what = format!("MailChimp {} {}", request.method().as_str(), request.url());
    match response.json::<Problem>() {
        Ok(problem) if !problem.title.is_empty() => Error::msg(format!(
            "{what} failed with {}: {}: {}",
            if problem.status != 0 {
                problem.status
            } else {
                response.status()
            },
            problem.title,
            problem.detail
        )),
        _ => Error::msg(format!(
            "{what} failed with HTTP {}: {}",
            response.status(),
            response.text()
        )),
    }
}

/// GET a JSON document.
pub fn get<T: DeserializeOwned>(path: &str, query: &[(&str, String)]) -> Result<T> {
    parse(path, send(Request::get(path).query(query))?)
}

/// GETs `path` once per query, all at once (the host keeps up to the
/// plugin's in-flight limit in flight), the documents in the order of the
/// queries; one answered 429 is retried on its own as `Retry-After` says.
pub fn get_each<T: DeserializeOwned>(
    path: &str,
    queries: &[Vec<(&str, String)>],
) -> Result<Vec<T>> {
    let requests: Vec<Request> = queries
        .iter()
        .map(|query| Request::get(path).query(query).connection(CONNECTION))
        .collect();
    let answers = junction_sdk::send_all(&requests);
    requests
        .into_iter()
        .zip(answers)
        .map(|(request, answer)| parse(path, settle(request, Some(answer?))?))
        .collect()
}

fn parse<T: DeserializeOwned>(path: &str, response: Response) -> Result<T> {
    response
        .json()
        .map_err(|err| Error::msg(format!("MailChimp GET {path}: unexpected response: {err}")))
}
