//! The runtime's ports wired to the rest of the host: plugins' kv and
//! connections read from the [`Store`] (whose backend keeps blocking work off the async workers), tokens kept
//! fresh by the OAuth [`TokenKeeper`], kv writes joining the [`Journal`]'s
//! group commit in the server. The runtime sees only the traits.

use std::sync::Arc;

use async_trait::async_trait;
use junction_core::kv::{KvOutcome, KvWrite};
use junction_core::model::Freshness;
use junction_core::{Connection, ConnectionKey, Service};
use junction_runtime::ports::{ConnectionSource, KvCommitter, KvStore, PortError, Ports};

use junction_events::Journal;
use junction_net::NetworkPolicy;
use junction_oauth::{ClientError, OAuth, TokenKeeper};
use junction_store::Store;

/// Plugins' kv namespaces in the store.
pub struct StoreKv(pub Arc<Store>);

#[async_trait]
impl KvStore for StoreKv {
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.0.kv_get(plugin, key).await.map_err(PortError::new)
    }

    async fn keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, PortError> {
        self.0.kv_keys(plugin, prefix).await.map_err(PortError::new)
    }

    async fn write(&self, write: KvWrite) -> Result<KvOutcome, PortError> {
        self.0.kv_write(&write).await.map_err(PortError::new)
    }
}

/// Connections from the store, their tokens kept fresh by the keeper.
pub struct StoreConnections {
    store: Arc<Store>,
    tokens: Arc<TokenKeeper>,
}

#[async_trait]
impl ConnectionSource for StoreConnections {
    async fn connection(&self, key: &ConnectionKey) -> Result<Option<Connection>, PortError> {
        self.store
            .connection(key.end_user(), &key.link)
            .await
            .map_err(PortError::new)
    }

    async fn service(&self, name: &str) -> Result<Option<Service>, PortError> {
        self.store.service(name).await.map_err(PortError::new)
    }

    async fn ensure_fresh(&self, key: &ConnectionKey) -> Result<Freshness, PortError> {
        self.tokens.ensure_fresh(key).await.map_err(PortError::new)
    }

    async fn after_unauthorized(
        &self,
        key: &ConnectionKey,
        used_token: &str,
    ) -> Result<Freshness, PortError> {
        self.tokens
            .after_unauthorized(key, used_token)
            .await
            .map_err(PortError::new)
    }
}

/// The ports of a runtime over `store`, with `tokens` refreshing its
/// connections.
pub fn over_store(store: Arc<Store>, tokens: Arc<TokenKeeper>) -> Ports {
    Ports {
        kv: Arc::new(StoreKv(store.clone())),
        connections: Arc::new(StoreConnections { store, tokens }),
    }
}

/// A token keeper for `store` whose token requests obey `network`.
pub fn token_keeper(
    store: Arc<Store>,
    network: NetworkPolicy,
) -> Result<Arc<TokenKeeper>, ClientError> {
    Ok(Arc::new(TokenKeeper::new(store, OAuth::new(network)?)))
}

/// Plugins' kv writes through the journal: each `set` waits for the group
/// commit it joined instead of paying an fsync of its own.
pub struct JournalKv(pub Arc<Journal>);

#[async_trait]
impl KvCommitter for JournalKv {
    async fn commit(&self, write: KvWrite) -> Result<KvOutcome, PortError> {
        self.0.kv(write).await.map_err(PortError::new)
    }
}
