//! The `kv` interface: a durable key-value namespace private to each plugin,
//! kept in the store under the plugin's name, within the plugin's quota
//! (`limits.kv-mb`, `limits.kv-keys`). Keys and values are checked before
//! anything is kept. Reads go to the [`KvStore`]; writes to the
//! [`KvCommitter`] when one is set (in the server, the journal's group
//! commit), otherwise to the store, one transaction each. Either way a
//! plugin's `set` never stalls other executions. Its state is [`KvState`].

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use crate::bindings::junction::plugin::kv::{self as wit, Host};
use crate::ports::{KvCommitter, KvStore, PortError};
use junction_core::kv::{KvOutcome, KvQuota, KvWrite, MAX_KV_KEY, validate_kv};

/// One execution's key-value namespace.
pub(crate) struct KvState {
    plugin: String,
    quota: KvQuota,
    store: Arc<dyn KvStore>,
    committer: Option<Arc<dyn KvCommitter>>,
}

/// The `kv` interface's data in the linker.
struct Kv;

impl HasData for Kv {
    type Data<'a> = &'a mut KvState;
}

/// Links the `kv` interface, its state found by `get`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvState,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Kv>(linker, get)
}

impl KvState {
    /// `plugin`'s namespace within `quota`: read from `store`, written
    /// through `committer` when there is one.
    pub(crate) fn new(
        plugin: &str,
        quota: KvQuota,
        store: Arc<dyn KvStore>,
        committer: Option<Arc<dyn KvCommitter>>,
    ) -> Self {
        KvState {
            plugin: plugin.to_owned(),
            quota,
            store,
            committer,
        }
    }

    async fn commit(&self, write: KvWrite) -> wasmtime::Result<KvOutcome> {
        let committed = match &self.committer {
            Some(committer) => committer.commit(write).await,
            None => self.store.write(write).await,
        };
        // A store failure is the host's, not the plugin's: fail the
        // execution loudly rather than pretend the write happened.
        committed.map_err(unavailable)
    }
}

fn unavailable(err: PortError) -> wasmtime::Error {
    wasmtime::Error::msg(format!("kv store unavailable: {err}"))
}

impl Host for KvState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.store
            .get(&self.plugin, &key)
            .await
            .map_err(unavailable)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if let Err(invalid) = validate_kv(&key, &value) {
            return Ok(Err(invalid.to_string()));
        }
        let write = KvWrite::Set {
            plugin: self.plugin.clone(),
            key,
            value,
            quota: self.quota,
        };
        Ok(match self.commit(write).await? {
            KvOutcome::Written => Ok(()),
            KvOutcome::Refused(why) => Err(why),
        })
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if key.len() > MAX_KV_KEY {
            // No such key can exist.
            return Ok(());
        }
        let write = KvWrite::Delete {
            plugin: self.plugin.clone(),
            key,
        };
        self.commit(write).await.map(|_| ())
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        self.store
            .keys(&self.plugin, &prefix)
            .await
            .map_err(unavailable)
    }
}
