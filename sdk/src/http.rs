//! Outbound HTTP through the host — Deluge's `invokeurl`, in reqwest's style.
//!
//! The host performs the request. Name a connection with
//! [`Request::connection`] and the host resolves a relative URL against the
//! connection's API base URL and attaches its credentials; the plugin never
//! sees a token.
//!
//! ```no_run
//! use junction_sdk::Request;
//! # fn main() -> junction_sdk::Result<()> {
//! let members: serde_json::Value = Request::get("/lists/abc/members")
//!     .connection("mailchimp")
//!     .query(&[("count", "100"), ("offset", "0")])
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # Ok(()) }
//! ```

use core::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::junction::plugin::http as wit;

/// An HTTP method.
///
/// ```
/// assert_eq!(junction_sdk::Method::Put.as_str(), "PUT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name as sent on the wire.
    ///
    /// ```
    /// assert_eq!(junction_sdk::Method::Get.as_str(), "GET");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn to_wit(self) -> wit::Method {
        match self {
            Method::Get => wit::Method::Get,
            Method::Head => wit::Method::Head,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
        }
    }
}

/// A request under construction. Nothing is sent until [`Request::send`].
///
/// ```no_run
/// use junction_sdk::Request;
/// # fn main() -> junction_sdk::Result<()> {
/// let body = serde_json::json!({ "data": [{ "Last_Name": "Doe", "Email": "jo@example.com" }] });
/// let response = Request::post("/Leads/upsert")
///     .connection("zohocrm")
///     .json(&body)?
///     .send()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    connection: Option<String>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any method.
    ///
    /// ```
    /// let request = junction_sdk::Request::new(junction_sdk::Method::Patch, "https://api.example.com/x");
    /// assert_eq!(request.method(), junction_sdk::Method::Patch);
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            connection: None,
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::get("/campaigns");
    /// assert_eq!(request.url(), "/campaigns");
    /// ```
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `HEAD` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::head("/ping");
    /// assert_eq!(request.method(), junction_sdk::Method::Head);
    /// ```
    pub fn head(url: impl Into<String>) -> Self {
        Self::new(Method::Head, url)
    }

    /// A `POST` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::post("/Leads");
    /// assert_eq!(request.method(), junction_sdk::Method::Post);
    /// ```
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::put("/lists/l1/members/abc");
    /// assert_eq!(request.method(), junction_sdk::Method::Put);
    /// ```
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `PATCH` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::patch("/lists/l1");
    /// assert_eq!(request.method(), junction_sdk::Method::Patch);
    /// ```
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    ///
    /// ```
    /// let request = junction_sdk::Request::delete("/lists/l1/members/abc");
    /// assert_eq!(request.method(), junction_sdk::Method::Delete);
    /// ```
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Sends the request with the credentials of the connection with this
    /// link name. The URL may then be a path relative to the connection's
    /// API base URL.
    ///
    /// ```
    /// let request = junction_sdk::Request::get("/campaigns").connection("mailchimp");
    /// assert_eq!(request.connection_name(), Some("mailchimp"));
    /// ```
    pub fn connection(mut self, link_name: impl Into<String>) -> Self {
        self.connection = Some(link_name.into());
        self
    }

    /// Appends query parameters ("parameters") to the URL; the host encodes them.
    ///
    /// ```
    /// let request = junction_sdk::Request::get("/campaigns").query(&[("count", "10"), ("offset", "20")]);
    /// assert_eq!(request.query_pairs().len(), 2);
    /// ```
    pub fn query<K: ToString, V: ToString>(mut self, pairs: &[(K, V)]) -> Self {
        self.query
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// let request = junction_sdk::Request::get("/x").header("accept", "application/json");
    /// assert_eq!(request.headers()[0].0, "accept");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a raw body.
    ///
    /// ```
    /// let request = junction_sdk::Request::post("/upload").body(b"hello".to_vec());
    /// assert_eq!(request.body_bytes(), Some(&b"hello"[..]));
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Serialises `value` as the JSON body and sets `content-type: application/json`.
    ///
    /// ```
    /// # fn main() -> junction_sdk::Result<()> {
    /// let request = junction_sdk::Request::post("/x").json(&serde_json::json!({"a": 1}))?;
    /// assert_eq!(request.body_bytes(), Some(&br#"{"a":1}"#[..]));
    /// # Ok(()) }
    /// ```
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|err| {
            HttpError::InvalidRequest(format!("the JSON body cannot be serialised: {err}"))
        })?;
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self.body = Some(body);
        Ok(self)
    }

    /// Limits how long this call may take; the host never waits longer than
    /// the execution's remaining time anyway.
    ///
    /// ```
    /// let request = junction_sdk::Request::get("/slow").timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// The method.
    ///
    /// ```
    /// assert_eq!(junction_sdk::Request::get("/").method(), junction_sdk::Method::Get);
    /// ```
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL as given.
    ///
    /// ```
    /// assert_eq!(junction_sdk::Request::get("/a").url(), "/a");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The query parameters added so far.
    ///
    /// ```
    /// assert!(junction_sdk::Request::get("/a").query_pairs().is_empty());
    /// ```
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The headers added so far.
    ///
    /// ```
    /// assert!(junction_sdk::Request::get("/a").headers().is_empty());
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body, if one was set.
    ///
    /// ```
    /// assert!(junction_sdk::Request::get("/a").body_bytes().is_none());
    /// ```
    pub fn body_bytes(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The connection's link name, if one was set.
    ///
    /// ```
    /// assert!(junction_sdk::Request::get("/a").connection_name().is_none());
    /// ```
    pub fn connection_name(&self) -> Option<&str> {
        self.connection.as_deref()
    }

    /// Sends the request through the host and waits for the whole response.
    /// Any HTTP status is a response; see [`Response::error_for_status`].
    ///
    /// ```no_run
    /// # fn main() -> junction_sdk::Result<()> {
    /// let response = junction_sdk::Request::get("/ping").connection("mailchimp").send()?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// ```
    pub fn send(&self) -> Result<Response, HttpError> {
        let (query, headers) = (pairs(&self.query), pairs(&self.headers));
        wit::send(self.as_wit(&query, &headers))
            .map(Response::from_wit)
            .map_err(HttpError::from)
    }

    /// The request as the host takes it, borrowed: the URL and the body go
    /// to the host from where they are, without a copy on this side.
    fn as_wit<'a>(
        &'a self,
        query: &'a [(&'a str, &'a str)],
        headers: &'a [(&'a str, &'a str)],
    ) -> wit::Request<'a> {
        wit::Request {
            method: self.method.to_wit(),
            url: &self.url,
            query,
            headers,
            body: self.body.as_deref(),
            connection: self.connection.as_deref(),
            timeout_ms: self.timeout_ms,
        }
    }
}

/// Name and value pairs as the host's bindings take them (no allocation
/// when there are none).
fn pairs(list: &[(String, String)]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// Sends several requests at once and waits for all of them; the answers
/// come in the order of the requests, each as [`Request::send`] would
/// answer it.
///
/// The host keeps at most the plugin's in-flight limit
/// (`limits.http-concurrency`, 6 by default) in flight and starts the next
/// request as one finishes. Each request counts against the call budget
/// (`limits.http-calls`) like one `send`; those past it are answered
/// [`HttpError::LimitExceeded`]. More requests than the whole budget end
/// the execution.
///
/// ```no_run
/// use junction_sdk::{Request, send_all};
///
/// let pages: Vec<Request> = (0..4)
///     .map(|page| {
///         Request::get("/lists/abc/members")
///             .connection("mailchimp")
///             .query(&[("offset", page * 100)])
///     })
///     .collect();
/// for answer in send_all(&pages) {
///     let members: serde_json::Value = answer?.error_for_status()?.json()?;
///     println!("{}", members["members"]);
/// }
/// # Ok::<(), junction_sdk::http::HttpError>(())
/// ```
pub fn send_all(requests: &[Request]) -> Vec<Result<Response, HttpError>> {
    if requests.is_empty() {
        return Vec::new();
    }
    let borrowed: Vec<_> = requests
        .iter()
        .map(|request| (pairs(&request.query), pairs(&request.headers)))
        .collect();
    let requests: Vec<wit::Request> = requests
        .iter()
        .zip(&borrowed)
        .map(|(request, (query, headers))| request.as_wit(query, headers))
        .collect();
    wit::send_many(&requests)
        .into_iter()
        .map(|answer| answer.map(Response::from_wit).map_err(HttpError::from))
        .collect()
}

/// A whole HTTP response.
///
/// ```
/// let response = junction_sdk::Response::new(200, vec![], br#"{"ok":true}"#.to_vec());
/// let value: serde_json::Value = response.json().unwrap();
/// assert_eq!(value["ok"], true);
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    /// The headers as the host hands them over: `name: value\n` lines.
    header_block: String,
    /// The headers as pairs, split from the block the first time they are
    /// asked for (most responses are never asked).
    header_pairs: OnceLock<Vec<(String, String)>>,
    body: Vec<u8>,
}

impl Response {
    fn from_wit(reply: wit::Reply) -> Self {
        Response {
            status: reply.status,
            header_block: reply.headers,
            header_pairs: OnceLock::new(),
            body: reply.body,
        }
    }

    /// Makes a response, for unit tests of a handler.
    ///
    /// ```
    /// let response = junction_sdk::Response::new(404, vec![], Vec::new());
    /// assert_eq!(response.status(), 404);
    /// ```
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Response {
            status,
            header_block: String::new(),
            header_pairs: OnceLock::from(headers),
            body,
        }
    }

    /// The status code.
    ///
    /// ```
    /// assert_eq!(junction_sdk::Response::new(201, vec![], vec![]).status(), 201);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    ///
    /// ```
    /// assert!(junction_sdk::Response::new(204, vec![], vec![]).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header with this name (case-insensitive).
    ///
    /// ```
    /// let response = junction_sdk::Response::new(429, vec![("retry-after".into(), "2".into())], vec![]);
    /// assert_eq!(response.header("Retry-After"), Some("2"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        match self.header_pairs.get() {
            Some(pairs) => pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            None => header_lines(&self.header_block)
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
        }
    }

    /// All headers, names in lower case.
    ///
    /// ```
    /// assert!(junction_sdk::Response::new(200, vec![], vec![]).headers().is_empty());
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        self.header_pairs.get_or_init(|| {
            header_lines(&self.header_block)
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        })
    }

    /// The body's bytes.
    ///
    /// ```
    /// assert_eq!(junction_sdk::Response::new(200, vec![], b"x".to_vec()).bytes(), b"x");
    /// ```
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 is replaced).
    ///
    /// ```
    /// assert_eq!(junction_sdk::Response::new(200, vec![], b"hi".to_vec()).text(), "hi");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Deserialises the body as JSON.
    ///
    /// ```
    /// let response = junction_sdk::Response::new(200, vec![], b"[1,2]".to_vec());
    /// let numbers: Vec<u32> = response.json().unwrap();
    /// assert_eq!(numbers, [1, 2]);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|err| HttpError::Decode {
            status: self.status,
            message: err.to_string(),
        })
    }

    /// Returns the response when its status is 2xx, otherwise an
    /// [`HttpError::Status`] that carries the status, headers and body.
    ///
    /// ```
    /// let response = junction_sdk::Response::new(404, vec![], b"not found".to_vec());
    /// let err = response.error_for_status().unwrap_err();
    /// assert_eq!(err.status(), Some(404));
    /// ```
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(HttpError::Status(self))
        }
    }
}

/// The name and value of each line of the host's header block: a name
/// never holds `:`, and one space follows it.
fn header_lines(block: &str) -> impl Iterator<Item = (&str, &str)> {
    block.split_terminator('\n').map(|line| {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        (name, value.strip_prefix(' ').unwrap_or(value))
    })
}

/// Why a request failed.
///
/// ```
/// let err = junction_sdk::http::HttpError::Timeout;
/// assert_eq!(err.to_string(), "invoke-url: the request timed out");
/// ```
#[derive(Debug, Clone)]
pub enum HttpError {
    /// No connection has this link name, or it was not granted to the plugin.
    UnknownConnection(String),
    /// The connection cannot be used now (not authorised, revoked, refresh failed).
    ConnectionUnavailable(String),
    /// The destination or a header is not allowed.
    Forbidden(String),
    /// The request is malformed.
    InvalidRequest(String),
    /// The call did not finish in time.
    Timeout,
    /// The response body was larger than the host accepts.
    TooLarge,
    /// A per-execution budget is used up.
    LimitExceeded(String),
    /// The connection failed.
    Transport(String),
    /// A non-2xx response, from [`Response::error_for_status`].
    Status(Response),
    /// The body was not the JSON expected.
    Decode {
        /// The response's status.
        status: u16,
        /// What did not match.
        message: String,
    },
}

impl HttpError {
    /// The HTTP status, for [`HttpError::Status`] and [`HttpError::Decode`].
    ///
    /// ```
    /// assert_eq!(junction_sdk::http::HttpError::TooLarge.status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status(response) => Some(response.status),
            HttpError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The response, for [`HttpError::Status`].
    ///
    /// ```
    /// let err = junction_sdk::Response::new(500, vec![], vec![]).error_for_status().unwrap_err();
    /// assert_eq!(err.response().map(|r| r.status()), Some(500));
    /// ```
    pub fn response(&self) -> Option<&Response> {
        match self {
            HttpError::Status(response) => Some(response),
            _ => None,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::UnknownConnection(msg) => write!(f, "invoke-url: unknown connection: {msg}"),
            HttpError::ConnectionUnavailable(msg) => {
                write!(f, "invoke-url: connection unavailable: {msg}")
            }
            HttpError::Forbidden(msg) => write!(f, "invoke-url: forbidden: {msg}"),
            HttpError::InvalidRequest(msg) => write!(f, "invoke-url: invalid request: {msg}"),
            HttpError::Timeout => f.write_str("invoke-url: the request timed out"),
            HttpError::TooLarge => f.write_str("invoke-url: the response body is too large"),
            HttpError::LimitExceeded(msg) => write!(f, "invoke-url: limit exceeded: {msg}"),
            HttpError::Transport(msg) => write!(f, "invoke-url: transport error: {msg}"),
            HttpError::Status(response) => {
                let body = response.text();
                let shown: String = body.chars().take(500).collect();
                write!(f, "HTTP {}: {shown}", response.status)
            }
            HttpError::Decode { status, message } => {
                write!(
                    f,
                    "the HTTP {status} response is not the JSON expected: {message}"
                )
            }
        }
    }
}

impl std::error::Error for HttpError {}

impl From<wit::Error> for HttpError {
    fn from(err: wit::Error) -> Self {
        match err {
            wit::Error::UnknownConnection(m) => HttpError::UnknownConnection(m),
            wit::Error::ConnectionUnavailable(m) => HttpError::ConnectionUnavailable(m),
            wit::Error::Forbidden(m) => HttpError::Forbidden(m),
            wit::Error::InvalidRequest(m) => HttpError::InvalidRequest(m),
            wit::Error::Timeout => HttpError::Timeout,
            wit::Error::TooLarge => HttpError::TooLarge,
            wit::Error::LimitExceeded(m) => HttpError::LimitExceeded(m),
            wit::Error::Transport(m) => HttpError::Transport(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(headers: &str) -> Response {
        Response::from_wit(wit::Reply {
            status: 200,
            headers: headers.to_owned(),
            body: b"{}".to_vec(),
        })
    }

    #[test]
    fn the_host_header_block_reads_as_headers() {
        let response = reply(
            "content-type: application/json\nlink: <a>; rel=\"next\"\nlink: <b>\nx-empty: \n",
        );
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.header("link"), Some("<a>; rel=\"next\""));
        assert_eq!(response.header("x-empty"), Some(""));
        assert_eq!(response.header("retry-after"), None);
        assert_eq!(
            response.headers(),
            [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("link".to_owned(), "<a>; rel=\"next\"".to_owned()),
                ("link".to_owned(), "<b>".to_owned()),
                ("x-empty".to_owned(), String::new()),
            ]
        );
        // Asking for the pairs first changes nothing.
        assert_eq!(response.header("LINK"), Some("<a>; rel=\"next\""));
        assert!(reply("").headers().is_empty());
    }
}
