//! The `kv` interface: a durable key-value namespace private to each plugin,
//! kept in the store under the plugin's name. Writes commit (and fsync) on a
//! blocking thread, so a plugin's `set` never stalls other executions.

use super::HostState;
use super::bindings::junction::plugin::kv::Host;

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        match self.shared.store.kv_get(&self.plugin, &key) {
            Ok(value) => Ok(value),
            // A store failure is the host's, not the plugin's: fail the
            // execution loudly rather than pretend the key is missing.
            Err(err) => Err(wasmtime::Error::msg(format!("kv store unavailable: {err}"))),
        }
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let store = self.shared.store.clone();
        let plugin = self.plugin.clone();
        let written = tokio::task::spawn_blocking(move || store.kv_set(&plugin, &key, &value))
            .await
            .map_err(|e| wasmtime::Error::msg(format!("kv store unavailable: {e}")))?;
        Ok(written.map_err(|err| err.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        let store = self.shared.store.clone();
        let plugin = self.plugin.clone();
        tokio::task::spawn_blocking(move || store.kv_delete(&plugin, &key))
            .await
            .map_err(|e| wasmtime::Error::msg(format!("kv store unavailable: {e}")))?
            .map_err(|err| wasmtime::Error::msg(format!("kv store unavailable: {err}")))
    }

    async fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        match self.shared.store.kv_keys(&self.plugin, &prefix) {
            Ok(keys) => Ok(keys),
            Err(err) => Err(wasmtime::Error::msg(format!("kv store unavailable: {err}"))),
        }
    }
}
