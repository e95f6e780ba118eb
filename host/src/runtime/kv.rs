//! The `kv` interface: a durable key-value namespace private to each plugin,
//! kept in the store under the plugin's name, within the plugin's quota
//! (`limits.kv-mb`, `limits.kv-keys`). Keys and values are checked before
//! anything is kept. Writes go to a [`KvCommitter`]: in the server, the
//! journal's group commit; otherwise one transaction each on a blocking
//! thread. Either way a plugin's `set` never stalls other executions.

use std::future::Future;
use std::pin::Pin;

use super::HostState;
use super::bindings::junction::plugin::kv::Host;
use crate::store::{KvOutcome, KvQuota, KvWrite, validate_kv};

/// A write on its way to disk: the outcome, or why the store failed.
pub type KvCommit = Pin<Box<dyn Future<Output = Result<KvOutcome, String>> + Send>>;

/// Where plugins' kv writes are committed.
pub trait KvCommitter: Send + Sync + 'static {
    /// Commits `write`; resolves once it is durable (or refused).
    fn commit(&self, write: KvWrite) -> KvCommit;
}

impl HostState {
    fn kv_quota(&self) -> KvQuota {
        KvQuota {
            bytes: self.limits.kv_bytes,
            keys: self.limits.kv_keys,
        }
    }
}

/// Commits `write` where the runtime sends kv writes. Takes the shared
/// state, not the `HostState`, which is not `Sync`.
async fn kv_commit(
    shared: std::sync::Arc<super::Shared>,
    write: KvWrite,
) -> wasmtime::Result<KvOutcome> {
    let committed = match shared.kv_committer.get() {
        Some(committer) => committer.commit(write).await,
        None => {
            let store = shared.store.clone();
            tokio::task::spawn_blocking(move || store.kv_write(&write))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
    };
    // A store failure is the host's, not the plugin's: fail the
    // execution loudly rather than pretend the write happened.
    committed.map_err(|err| wasmtime::Error::msg(format!("kv store unavailable: {err}")))
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let store = self.shared.store.clone();
        let plugin = self.plugin.clone();
        tokio::task::spawn_blocking(move || store.kv_get(&plugin, &key))
            .await
            .map_err(|e| wasmtime::Error::msg(format!("kv store unavailable: {e}")))?
            .map_err(|err| wasmtime::Error::msg(format!("kv store unavailable: {err}")))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        if let Err(invalid) = validate_kv(&key, &value) {
            return Ok(Err(invalid.to_string()));
        }
        let write = KvWrite::Set {
            plugin: self.plugin.clone(),
            key,
            value,
            quota: self.kv_quota(),
        };
        Ok(match kv_commit(self.shared.clone(), write).await? {
            KvOutcome::Written => Ok(()),
            KvOutcome::Refused(why) => Err(why),
        })
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if key.len() > crate::store::MAX_KV_KEY {
            // No such key can exist.
            return Ok(());
        }
        let write = KvWrite::Delete {
            plugin: self.plugin.clone(),
            key,
        };
        kv_commit(self.shared.clone(), write).await.map(|_| ())
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let store = self.shared.store.clone();
        let plugin = self.plugin.clone();
        tokio::task::spawn_blocking(move || store.kv_keys(&plugin, &prefix))
            .await
            .map_err(|e| wasmtime::Error::msg(format!("kv store unavailable: {e}")))?
            .map_err(|err| wasmtime::Error::msg(format!("kv store unavailable: {err}")))
    }
}
