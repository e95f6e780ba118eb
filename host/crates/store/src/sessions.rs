//! Sessions: the OAuth authorizations a browser is on its way through. One
//! row per `state` handed out, keyed by the state's sha256 (the state itself
//! is never stored), taken exactly once by its callback.

use async_trait::async_trait;

use crate::StoreError;
use junction_core::Secret;

/// How long a state is accepted.
pub const STATE_TTL_MS: u64 = 10 * 60 * 1000;

/// An authorization the browser is on its way through; `S` is how its PKCE
/// verifier is held: opened for callers, sealed (`String`) in a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization<S = Secret> {
    /// The connection being authorised.
    pub link_name: String,
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
    ) -> Result<Option<String>, StoreError>;
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
