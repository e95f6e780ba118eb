//! Sessions: the OAuth authorizations a browser is on its way through. One
//! row per `state` handed out, keyed by the state's sha256 (the state itself
//! is never stored), taken exactly once by its callback.

use async_trait::async_trait;

use crate::StoreError;
use junction_core::Secret;
use junction_core::model::ConnectionKey;

/// How long a state is accepted.
pub const STATE_TTL_MS: u64 = 10 * 60 * 1000;

/// An authorization the browser is on its way through; `S` is how its PKCE
/// verifier is held: opened for callers, sealed (`String`) in a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization<S = Secret> {
    /// The connection being authorised.
    pub link_name: String,
    /// Whose: an end user's, or (absent) the organisation's.
    pub end_user: Option<String>,
    /// The redirect URI sent with the authorize request.
    pub redirect_uri: String,
    /// The PKCE verifier, when PKCE is on.
    pub verifier: Option<S>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// When the authorize URL was made.
    pub created_at_ms: u64,
    /// Whether the web console started it (the browser goes back there).
    pub from_console: bool,
    /// The connect link whose hosted page started it: the callback checks
    /// the browser holds the link before redeeming the code.
    pub connect_link: Option<String>,
}

/// What a pending authorization is for, read without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTarget {
    /// The connection.
    pub key: ConnectionKey,
    /// The connect link that started it, if one did.
    pub connect_link: Option<String>,
}

/// Pending OAuth authorizations.
#[async_trait]
pub trait SessionRows: Send + Sync {
    /// Records a pending authorization under the state's hash and drops
    /// those older than [`STATE_TTL_MS`].
    async fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization<String>,
    ) -> Result<(), StoreError>;
    /// The connection a pending authorization is for, without taking it.
    async fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingTarget>, StoreError>;
    /// Takes (removes) the pending authorization: of any number of
    /// concurrent takes of one state, exactly one gets it. A state never
    /// issued costs a read, not a write.
    async fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization<String>>, StoreError>;
    /// How many authorizations are pending.
    async fn pending_authorization_count(&self) -> Result<u64, StoreError>;
}

/// A console sign-in as stored, under the sha256 of its id (the id itself
/// lives only in the browser's cookie; its CSRF token is derived from it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleSession {
    /// When it started.
    pub created_at_ms: u64,
    /// When a request last used it (moved forward at most every few seconds).
    pub last_seen_ms: u64,
    /// The message its next page shows, if any.
    pub flash: Option<ConsoleFlash>,
}

/// A message shown once on a session's next page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleFlash {
    /// `ok` or `error`.
    pub kind: String,
    /// The words.
    pub text: String,
}

/// Signed-in console sessions, so any host of several can serve a browser
/// that signed in on another.
#[async_trait]
pub trait ConsoleRows: Send + Sync {
    /// Stores a new session under `key`, first dropping the sessions last
    /// seen before `idle_before_ms` and, when `max` are left, the least
    /// recently seen ones, so at most `max` exist.
    async fn start_console_session(
        &self,
        key: &str,
        session: &ConsoleSession,
        idle_before_ms: u64,
        max: u64,
    ) -> Result<(), StoreError>;
    /// The session stored under `key`.
    async fn console_session(&self, key: &str) -> Result<Option<ConsoleSession>, StoreError>;
    /// Records that the session was used at `at_ms`; false when it is gone.
    async fn touch_console_session(&self, key: &str, at_ms: u64) -> Result<bool, StoreError>;
    /// Replaces the session's message with `flash`, returning the one it
    /// had: of two requests swapping at once, one gets the old message.
    async fn swap_console_flash(
        &self,
        key: &str,
        flash: Option<&ConsoleFlash>,
    ) -> Result<Option<ConsoleFlash>, StoreError>;
    /// Ends one session.
    async fn end_console_session(&self, key: &str) -> Result<(), StoreError>;
    /// Ends every session; how many there were.
    async fn end_console_sessions(&self) -> Result<u64, StoreError>;
}
