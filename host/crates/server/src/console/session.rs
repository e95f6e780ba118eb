//! Console sign-in: the admin token is exchanged once for a session whose
//! random id lives only in an HttpOnly, SameSite=Strict cookie (the server
//! keeps its sha256), and every state-changing request must carry the
//! session's CSRF token — as the `_csrf` form field, the `X-CSRF-Token`
//! header (htmx), or for uploads the first multipart part — and must not
//! come from another site. Sessions are kept in the store (by hash), so
//! every host sharing it serves a browser that signed in on any of them and
//! a restart signs no one out; an admin token rotation or
//! `--console-session-secs` of inactivity does. The CSRF token is derived
//! from the session id, so the store holds no secret of a session.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
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
use junction_store::{ConsoleFlash, ConsoleSession, Store, StoreError, now_ms};

/// The session cookie.
pub const SESSION_COOKIE: &str = "junction_session";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "junction_login";
/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body the console reads (a run's payload is at most 1 MiB).
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// Sessions at once; the least recently used go first beyond it.
const MAX_SESSIONS: u64 = 10_000;
/// The most a session's last use may lag in the store (a write per request
/// would cost a commit per page).
const TOUCH_EVERY_MAX_MS: u64 = 10_000;

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

/// The signed-in sessions, kept in the store so that every host sharing it
/// knows every session.
pub struct Sessions {
    ttl: Duration,
    secure: bool,
    store: Arc<Store>,
}

/// The signed-in session of a request (an extension set by [`require_session`]).
#[derive(Debug, Clone)]
pub struct Session {
    key: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The message left for this page (taken on full-page loads only).
    pub flash: Option<Flash>,
}

/// A message a handler leaves for the next page (a response extension the
/// session middleware stores once the handler is done).
#[derive(Debug, Clone)]
pub struct LeftFlash(pub Flash);

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored key of session `id`: its sha256, so the store never holds an id.
fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The CSRF token of session `id`, derived so nothing but the cookie holds
/// a secret: knowing it reveals nothing of the id.
fn csrf_of(id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"junction console csrf\0");
    hash.update(id.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl From<ConsoleFlash> for Flash {
    fn from(stored: ConsoleFlash) -> Self {
        Flash {
            kind: if stored.kind == "ok" { "ok" } else { "error" },
            text: stored.text,
        }
    }
}

pub use crate::html::cookie;

impl Sessions {
    /// Sessions in `store` that end after `ttl` without a request; cookies
    /// are marked `Secure` when the console is served over https.
    pub fn new(store: Arc<Store>, ttl: Duration, secure: bool) -> Self {
        Sessions { ttl, secure, store }
    }

    /// How long a session's last use may be out of date in the store: a
    /// request writes only when its session's time is older than this.
    fn touch_every(&self) -> u64 {
        (millis(self.ttl) / 20).min(TOUCH_EVERY_MAX_MS)
    }

    /// Starts a session; returns the cookie that carries it.
    pub async fn create(&self) -> Result<HeaderValue, StoreError> {
        let id = random_token();
        let now = now_ms();
        let session = ConsoleSession {
            created_at_ms: now,
            last_seen_ms: now,
            flash: None,
        };
        self.store
            .backend()
            .start_console_session(
                &key_of(&id),
                &session,
                now.saturating_sub(millis(self.ttl)),
                MAX_SESSIONS,
            )
            .await?;
        // A browser-session cookie: the server ends idle sessions, and a
        // cookie that outlived its session says so ("expired") at sign-in.
        Ok(self.cookie_value(SESSION_COOKIE, &id, None))
    }

    /// The live session the cookie names, its inactivity clock restarted;
    /// with `take_flash`, the message left for it is taken.
    async fn touch(&self, id: &str, take_flash: bool) -> Result<Option<Session>, StoreError> {
        let key = key_of(id);
        let backend = self.store.backend();
        let Some(stored) = backend.console_session(&key).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let idle = now.saturating_sub(stored.last_seen_ms);
        if idle >= millis(self.ttl) {
            backend.end_console_session(&key).await?;
            return Ok(None);
        }
        if idle >= self.touch_every() {
            backend.touch_console_session(&key, now).await?;
        }
        let flash = if take_flash && stored.flash.is_some() {
            backend
                .swap_console_flash(&key, None)
                .await?
                .map(Flash::from)
        } else {
            None
        };
        Ok(Some(Session {
            key,
            csrf: csrf_of(id),
            flash,
        }))
    }

    /// Ends a session.
    pub async fn end(&self, session: &Session) -> Result<(), StoreError> {
        self.store.backend().end_console_session(&session.key).await
    }

    /// Ends every session (the admin token changed).
    pub async fn end_all(&self) -> Result<u64, StoreError> {
        self.store.backend().end_console_sessions().await
    }

    /// Leaves a message for the session's next page.
    async fn flash(&self, session: &Session, flash: Flash) -> Result<(), StoreError> {
        let stored = ConsoleFlash {
            kind: flash.kind.to_owned(),
            text: flash.text,
        };
        self.store
            .backend()
            .swap_console_flash(&session.key, Some(&stored))
            .await?;
        Ok(())
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
    // A message is shown by the next full page, not by a fragment htmx fetches.
    let full_page =
        request.method() == Method::GET && !request.headers().contains_key("hx-request");
    let session = match id.as_deref() {
        Some(id) => sessions.touch(id, full_page).await.map_err(stored_error)?,
        None => None,
    };
    let Some(session) = session else {
        return Ok(to_sign_in(&request, id.is_some()));
    };
    let request = if request.method() == Method::POST {
        check_csrf(&session, request).await?
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(session.clone());
    let mut response = next.run(request).await;
    if let Some(LeftFlash(flash)) = response.extensions_mut().remove::<LeftFlash>() {
        sessions
            .flash(&session, flash)
            .await
            .map_err(stored_error)?;
    }
    Ok(response)
}

fn stored_error(err: StoreError) -> PageError {
    super::super::error::ApiError::from(err).into()
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

    fn id_in(cookie: &HeaderValue) -> String {
        let text = cookie.to_str().unwrap();
        text.strip_prefix("junction_session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn sessions_expire_and_end_and_are_shared_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).await.unwrap());
        let sessions = Sessions::new(store.clone(), Duration::from_millis(300), false);
        let cookie = sessions.create().await.unwrap();
        let text = cookie.to_str().unwrap().to_owned();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(!text.contains("Secure"));
        let id = id_in(&cookie);
        let session = sessions.touch(&id, false).await.unwrap().expect("live");
        assert!(
            sessions
                .touch("not-a-session", false)
                .await
                .unwrap()
                .is_none()
        );

        // Another host over the same store knows the session and its token.
        let beside = Sessions::new(store.clone(), Duration::from_millis(300), false);
        let there = beside
            .touch(&id, false)
            .await
            .unwrap()
            .expect("live there too");
        assert_eq!(there.csrf, session.csrf);
        assert_ne!(session.csrf, id, "the token is not the id");

        sessions.flash(&session, Flash::ok("done")).await.unwrap();
        let shown = beside.touch(&id, true).await.unwrap().unwrap();
        assert_eq!(shown.flash, Some(Flash::ok("done")));
        assert_eq!(
            sessions.touch(&id, true).await.unwrap().unwrap().flash,
            None,
            "shown once"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            sessions.touch(&id, false).await.unwrap().is_none(),
            "expired after the ttl"
        );

        let id = id_in(&sessions.create().await.unwrap());
        assert_eq!(beside.end_all().await.unwrap(), 1);
        assert!(sessions.touch(&id, false).await.unwrap().is_none());
    }

    #[test]
    fn reads_cookies_and_marks_cross_site_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; junction_login=xyz"),
        );
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        assert!(login_token_matches(&headers, "xyz"));
        assert!(!login_token_matches(&headers, "xy"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!login_token_matches(&headers, "xyz"));
    }
}
