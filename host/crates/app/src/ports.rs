//! The runtime's ports wired to the rest of the host: plugins' kv and
//! connections read from the [`Store`] on blocking threads, tokens kept
//! fresh by the OAuth [`TokenKeeper`], kv writes joining the [`Journal`]'s
//! group commit in the server. The runtime sees only the traits.

use std::sync::Arc;

use async_trait::async_trait;
use junction_core::kv::{KvOutcome, KvWrite};
use junction_core::model::Freshness;
use junction_core::{Connection, Service};
use junction_runtime::ports::{ConnectionSource, KvCommitter, KvStore, PortError, Ports};

use junction_events::Journal;
use junction_net::NetworkPolicy;
use junction_oauth::{ClientError, OAuth, TokenKeeper};
use junction_store::{Store, StoreError};

/// Runs `work` against the store on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PortError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(PortError::new)?
        .map_err(PortError::new)
}

/// Plugins' kv namespaces in the store.
pub struct StoreKv(pub Arc<Store>);

#[async_trait]
impl KvStore for StoreKv {
    async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        blocking(&self.0, move |store| store.kv_get(&plugin, &key)).await
    }

    async fn keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, PortError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        blocking(&self.0, move |store| store.kv_keys(&plugin, &prefix)).await
    }

    async fn write(&self, write: KvWrite) -> Result<KvOutcome, PortError> {
        blocking(&self.0, move |store| store.kv_write(&write)).await
    }
}

/// Connections from the store, their tokens kept fresh by the keeper.
pub struct StoreConnections {
    store: Arc<Store>,
    tokens: Arc<TokenKeeper>,
}

#[async_trait]
impl ConnectionSource for StoreConnections {
    async fn connection(&self, link: &str) -> Result<Option<Connection>, PortError> {
        let link = link.to_owned();
        blocking(&self.store, move |store| store.connection(&link)).await
    }

    async fn service(&self, name: &str) -> Result<Option<Service>, PortError> {
        let name = name.to_owned();
        blocking(&self.store, move |store| store.service(&name)).await
    }

    async fn ensure_fresh(&self, link: &str) -> Result<Freshness, PortError> {
        self.tokens.ensure_fresh(link).await.map_err(PortError::new)
    }

    async fn after_unauthorized(
        &self,
        link: &str,
        used_token: &str,
    ) -> Result<Freshness, PortError> {
        self.tokens
            .after_unauthorized(link, used_token)
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
