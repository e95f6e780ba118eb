//! Console sign-in: the admin token is exchanged once for a session whose
//! random id lives only in an HttpOnly, SameSite=Strict cookie (the server
//! keeps its sha256), and every state-changing request must carry the
//! session's CSRF token — as the `_csrf` form field, the `X-CSRF-Token`
//! header (htmx), or for uploads the first multipart part — and must not
//! come from another site. Sessions live in memory: a restart, an admin
//! token rotation or `--console-session-secs` of inactivity signs everyone
//! out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::super::AppState;
use super::PageError;

/// The session cookie.
pub const SESSION_COOKIE: &str = "junction_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "junction_login";
/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body the console reads (a run's payload is at most 1 MiB).
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// Sessions at once; the oldest go first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// A message shown once on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error`, a CSS class.
    pub kind: &'static str,
    /// The words.
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash {
            kind: "ok",
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Flash {
            kind: "error",
            text: text.into(),
        }
    }

    /// The words as HTML (escaped; quoted names as code).
    pub fn html(&self) -> String {
        super::format::rich(&self.text)
    }
}

struct Entry {
    csrf: String,
    last_seen: Instant,
    flash: Option<Flash>,
}

/// The signed-in sessions.
pub struct Sessions {
    ttl: Duration,
    secure: bool,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// The signed-in session of a request (an extension set by [`require_session`]).
#[derive(Debug, Clone)]
pub struct Session {
    key: [u8; 32],
    /// The token every form of this session carries.
    pub csrf: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl Sessions {
    /// Sessions that end after `ttl` without a request; cookies are marked
    /// `Secure` when the console is served over https.
    pub fn new(ttl: Duration, secure: bool) -> Self {
        Sessions {
            ttl,
            secure,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; returns the cookie that carries it.
    pub fn create(&self) -> HeaderValue {
        let id = random_token();
        let now = Instant::now();
        let mut entries = self.entries();
        entries.retain(|_, e| now.duration_since(e.last_seen) < self.ttl);
        if entries.len() >= MAX_SESSIONS
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| *k)
        {
            entries.remove(&oldest);
        }
        entries.insert(
            key_of(&id),
            Entry {
                csrf: random_token(),
                last_seen: now,
                flash: None,
            },
        );
        // A browser-session cookie: the server ends idle sessions, and a
        // cookie that outlived its session says so ("expired") at sign-in.
        self.cookie_value(SESSION_COOKIE, &id, None)
    }

    /// The live session the cookie names, its inactivity clock restarted.
    fn touch(&self, id: &str) -> Option<Session> {
        let key = key_of(id);
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.get_mut(&key)?;
        if now.duration_since(entry.last_seen) >= self.ttl {
            entries.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(Session {
            key,
            csrf: entry.csrf.clone(),
        })
    }

    /// Ends a session.
    pub fn end(&self, session: &Session) {
        self.entries().remove(&session.key);
    }

    /// Ends every session (the admin token changed).
    pub fn end_all(&self) {
        self.entries().clear();
    }

    /// Leaves a message for the session's next page.
    pub fn flash(&self, session: &Session, flash: Flash) {
        if let Some(entry) = self.entries().get_mut(&session.key) {
            entry.flash = Some(flash);
        }
    }

    /// Takes the message left for this page, if any.
    pub fn take_flash(&self, session: &Session) -> Option<Flash> {
        self.entries()
            .get_mut(&session.key)
            .and_then(|e| e.flash.take())
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site;
    /// without `max_age` it lasts until the browser closes.
    pub fn cookie_value(&self, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let age = max_age.map_or(String::new(), |d| format!("; Max-Age={}", d.as_secs()));
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that deletes cookie `name`.
    pub fn clear_cookie(&self, name: &str) -> HeaderValue {
        self.cookie_value(name, "", Some(Duration::ZERO))
    }
}

/// Where an unsigned-in request is sent: the sign-in page, coming back to
/// the page asked for (only for GETs; a form post starts again from its page).
fn to_sign_in(request: &Request, expired: bool) -> Response {
    let mut location = String::from("/login");
    let mut query = Vec::new();
    if request.method() == Method::GET {
        let wanted = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if wanted != "/" {
            query.push(format!(
                "next={}",
                url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect::<String>()
            ));
        }
    }
    if expired {
        query.push("expired=1".to_owned());
    }
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query.join("&"));
    }
    // htmx follows `HX-Redirect` with a full page load instead of swapping
    // the sign-in page into a fragment.
    if request.headers().contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Refuses requests a browser marks as coming from another site, whatever
/// they carry; requests without the header (old browsers, scripts) are
/// judged by their token alone.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
}

/// Middleware for every console page but sign-in and assets: a live
/// session is required, and a POST must carry its CSRF token.
pub async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, PageError> {
    let sessions = &state.console;
    let id = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned);
    let Some(session) = id.as_deref().and_then(|id| sessions.touch(id)) else {
        return Ok(to_sign_in(&request, id.is_some()));
    };
    let request = if request.method() == Method::POST {
        check_csrf(&session, request).await?
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(session);
    Ok(next.run(request).await)
}

/// The answer to a form without this session's token.
pub fn refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form could not be accepted",
        "It did not carry this session's security token, or it came from another site. Go back, reload the page and try again.",
    )
}

/// Passes a POST on when it carries the session's CSRF token. A url-encoded
/// body is read here (and handed on unchanged); a multipart body is checked
/// by its handler, which reads the `_csrf` part first.
async fn check_csrf(session: &Session, request: Request) -> Result<Request, PageError> {
    if cross_site(request.headers()) {
        return Err(refused());
    }
    if let Some(header) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return if same(header, &session.csrf) {
            Ok(request)
        } else {
            Err(refused())
        };
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        return Ok(request);
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large",
                format!(
                    "The console accepts forms up to {} MiB.",
                    MAX_FORM_BYTES / 1024 / 1024
                ),
            )
        })?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match token {
        Some(token) if same(&token, &session.csrf) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refused()),
    }
}

/// For multipart handlers: whether the first part's value is the token.
pub fn csrf_matches(session: &Session, presented: &str) -> Result<(), PageError> {
    if same(presented, &session.csrf) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// For the sign-in form: whether the form's token matches its cookie.
pub fn login_token_matches(headers: &HeaderMap, presented: &str) -> bool {
    !cross_site(headers)
        && cookie(headers, LOGIN_COOKIE).is_some_and(|expected| same(expected, presented))
}

/// A fresh sign-in form token.
pub fn new_login_token() -> String {
    random_token()
}

/// Adds a `Set-Cookie` to a response.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::new(Duration::from_millis(50), false);
        let cookie = sessions.create();
        let text = cookie.to_str().unwrap().to_owned();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(!text.contains("Secure"));
        let id = text
            .strip_prefix("junction_session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap();
        let session = sessions.touch(id).expect("live");
        assert!(sessions.touch("not-a-session").is_none());
        sessions.flash(&session, Flash::ok("done"));
        assert_eq!(sessions.take_flash(&session), Some(Flash::ok("done")));
        assert_eq!(sessions.take_flash(&session), None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.touch(id).is_none(), "expired after the ttl");

        let cookie = sessions.create();
        let text = cookie.to_str().unwrap().to_owned();
        let id = text
            .strip_prefix("junction_session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_owned();
        sessions.end_all();
        assert!(sessions.touch(&id).is_none());
    }

    #[test]
    fn reads_cookies_and_marks_cross_site_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; junction_login=xyz"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(login_token_matches(&headers, "xyz"));
        assert!(!login_token_matches(&headers, "xy"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!login_token_matches(&headers, "xyz"));
    }
}
