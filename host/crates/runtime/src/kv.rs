//! The `kv` interface: a durable key-value namespace private to each plugin,
//! kept in the store under the plugin's name, within the plugin's quota
//! (`limits.kv-mb`, `limits.kv-keys`). Keys and values are checked before
//! anything is kept. Reads go to the [`KvStore`](crate::ports::KvStore);
//! writes to the [`KvCommitter`](crate::ports::KvCommitter) when one is set
//! (in the server, the journal's group commit), otherwise to the store, one
//! transaction each. Either way a plugin's `set` never stalls other executions.

use junction_core::kv::{KvOutcome, KvQuota, KvWrite, MAX_KV_KEY, validate_kv};

use super::HostState;
use super::bindings::junction::plugin::kv::Host;
use crate::ports::PortError;

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
        None => shared.ports.kv.write(write).await,
    };
    // A store failure is the host's, not the plugin's: fail the
    // execution loudly rather than pretend the write happened.
    committed.map_err(unavailable)
}

fn unavailable(err: PortError) -> wasmtime::Error {
    wasmtime::Error::msg(format!("kv store unavailable: {err}"))
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        self.shared
            .ports
            .kv
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
            quota: self.kv_quota(),
        };
        Ok(match kv_commit(self.shared.clone(), write).await? {
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
        kv_commit(self.shared.clone(), write).await.map(|_| ())
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        self.shared
            .ports
            .kv
            .keys(&self.plugin, &prefix)
            .await
            .map_err(unavailable)
    }
}
