//! What the runtime needs from the rest of the host, as traits it owns: a
//! plugin's key-value namespace ([`KvStore`], with an optional
//! [`KvCommitter`] for writes) and the connections a request may carry
//! ([`ConnectionSource`]). The host wires them to its store, its journal
//! and its OAuth token keeper; the runtime knows none of them.

use async_trait::async_trait;
use junction_core::kv::{KvOutcome, KvWrite};
use junction_core::model::Freshness;
use junction_core::{Connection, ConnectionKey, Service};

/// A failure behind a port: the host's storage or a token endpoint, never
/// the plugin's doing. Its text says what failed.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PortError(Box<dyn std::error::Error + Send + Sync>);

impl PortError {
    /// Wraps the error a port's implementation met.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        PortError(error.into())
    }
}

/// Each plugin's private key-value namespace.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The value under `key` in `plugin`'s namespace.
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, PortError>;
    /// The keys of `plugin`'s namespace that start with `prefix`, in order.
    async fn keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, PortError>;
    /// Applies `write` in a transaction of its own.
    async fn write(&self, write: KvWrite) -> Result<KvOutcome, PortError>;
}

/// Where plugins' kv writes are committed when not one transaction each:
/// in the server, the journal's group commit.
#[async_trait]
pub trait KvCommitter: Send + Sync + 'static {
    /// Commits `write`; resolves once it is durable (or refused).
    async fn commit(&self, write: KvWrite) -> Result<KvOutcome, PortError>;
}

/// The connections plugins' requests name, and their tokens' freshness.
#[async_trait]
pub trait ConnectionSource: Send + Sync + 'static {
    /// The connection `key` names, secrets opened.
    async fn connection(&self, key: &ConnectionKey) -> Result<Option<Connection>, PortError>;
    /// The service `name`.
    async fn service(&self, name: &str) -> Result<Option<Service>, PortError>;
    /// Refreshes the OAuth token of `key`'s connection if it is about to expire.
    async fn ensure_fresh(&self, key: &ConnectionKey) -> Result<Freshness, PortError>;
    /// `used_token` was refused with a 401: refreshes `key`'s connection
    /// once, unless its token was replaced meanwhile.
    async fn after_unauthorized(
        &self,
        key: &ConnectionKey,
        used_token: &str,
    ) -> Result<Freshness, PortError>;
}

/// What the runtime is given to reach the rest of the host.
#[derive(Clone)]
pub struct Ports {
    /// Plugins' kv namespaces.
    pub kv: std::sync::Arc<dyn KvStore>,
    /// Connections and their tokens.
    pub connections: std::sync::Arc<dyn ConnectionSource>,
}
