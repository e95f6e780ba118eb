//! The real runtime and store in a temporary data directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use junction_host::manifest::Manifest;
use junction_host::runtime::{
    Component, Event, ExecutionRecord, Grants, HostPattern, LoadedPlugin, Runtime, RuntimeConfig,
};
use junction_host::store::{
    AuthType, Connection, ConnectionStatus, Credentials, Placement, Secret, Service, Store, now_ms,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::plugins;

pub struct Harness {
    pub dir: TempDir,
    pub runtime: Runtime,
    store: Arc<Store>,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_config(RuntimeConfig {
            max_instances: 16,
            // The mock providers listen on 127.0.0.1.
            network: junction_host::netguard::NetworkPolicy {
                allow_private: true,
            },
            ..RuntimeConfig::default()
        })
        .await
    }

    pub async fn with_config(config: RuntimeConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).await.expect("open store"));
        let tokens = junction_host::ports::token_keeper(store.clone(), config.network)
            .expect("token keeper");
        let runtime = Runtime::new(
            junction_host::ports::over_store(store.clone(), tokens),
            config,
        )
        .expect("runtime");
        Harness {
            dir,
            runtime,
            store,
        }
    }

    /// Closes the runtime and the store, keeping the data directory.
    pub fn close(self) -> TempDir {
        let Harness {
            dir,
            runtime,
            store,
        } = self;
        drop(runtime);
        drop(store);
        dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Loads a built test plugin under `name` with these grants and manifest.
    pub fn load(
        &self,
        package: &str,
        name: &str,
        connections: &[&str],
        allowed_hosts: &[String],
        manifest: &Manifest,
    ) -> LoadedPlugin {
        let (component, bytes) = self.compiled(package);
        let grants = Grants {
            connections: connections.iter().map(|s| s.to_string()).collect(),
            requested: connections.iter().map(|s| s.to_string()).collect(),
            org_fallback: manifest.org_fallback.clone(),
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
        };
        self.runtime
            .load(name, &component, bytes, grants, manifest)
            .expect("load")
    }

    /// The compiled component of `package` and its size. Compiled once per
    /// engine configuration and component, and kept beside the built
    /// plugins for the next test binary: a Python or JavaScript component
    /// carries its interpreter, whose compilation would dominate every test
    /// that loads it.
    pub fn compiled(&self, package: &str) -> (Component, usize) {
        type Artifacts = Mutex<HashMap<PathBuf, Arc<(Vec<u8>, usize)>>>;
        static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
        let artifacts = ARTIFACTS.get_or_init(Default::default);
        let bytes = plugins::component_bytes(package);
        let sha = hex::encode(&Sha256::digest(&bytes)[..16]);
        let compatibility = self.runtime.compatibility_hash();
        let path = plugins::plugin_target_dir()
            .join("artifacts")
            .join(format!("{sha}-{}.cwasm", &compatibility[..16]));
        let mut artifacts = artifacts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = artifacts
            .entry(path.clone())
            .or_insert_with(|| {
                let artifact = std::fs::read(&path).unwrap_or_else(|_| {
                    let (artifact, _) = self.runtime.precompile(&bytes).expect("compile");
                    keep_artifact(&path, &artifact);
                    artifact
                });
                Arc::new((artifact, bytes.len()))
            })
            .clone();
        drop(artifacts);
        // The file is one this test suite's own engine wrote, under its
        // compatibility hash.
        let component = self
            .runtime
            .deserialize_own_artifact(&entry.0)
            .expect("load the artifact the test suite compiled");
        (component, entry.1)
    }

    pub fn load_simple(&self, package: &str, connections: &[&str]) -> LoadedPlugin {
        self.load(package, package, connections, &[], &Manifest::default())
    }

    pub async fn run(
        &self,
        plugin: &LoadedPlugin,
        kind: &str,
        payload: serde_json::Value,
    ) -> ExecutionRecord {
        self.runtime
            .execute(plugin, Event::new(kind, payload.to_string()))
            .await
    }

    /// A connection sending `Authorization: Bearer {token}` to `base_url`.
    pub async fn add_bearer(&self, link: &str, base_url: &str, token: &str) {
        self.add_connection(
            link,
            base_url,
            AuthType::Bearer,
            Placement::bearer(),
            bearer(token),
            &[],
        )
        .await;
    }

    /// A connection sending an API key as the query parameter `param`.
    pub async fn add_query_key(&self, link: &str, base_url: &str, param: &str, key: &str) {
        let placement = Placement::Query {
            name: param.to_owned(),
        };
        let credentials = Credentials::ApiKey {
            key: Secret::new(key.to_owned()),
        };
        self.add_connection(
            link,
            base_url,
            AuthType::ApiKey,
            placement,
            credentials,
            &[],
        )
        .await;
    }

    /// Adds a service and a connected connection of it.
    pub async fn add_connection(
        &self,
        link: &str,
        base_url: &str,
        auth_type: AuthType,
        placement: Placement,
        credentials: Credentials<Secret>,
        metadata: &[(&str, &str)],
    ) {
        let service = format!("{link}-svc");
        let credentials = ConnectionCredentials {
            auth_type,
            placement,
            credentials,
        };
        store_connection(
            self.store(),
            link,
            &service,
            base_url,
            credentials,
            metadata,
        )
        .await
        .expect("store connection");
    }
}

/// Writes an artifact beside the built plugins (through a temporary file,
/// so a concurrent reader never sees half of one).
fn keep_artifact(path: &Path, artifact: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let partial = path.with_extension(format!("{}.partial", std::process::id()));
    if std::fs::write(&partial, artifact).is_ok() {
        let _ = std::fs::rename(&partial, path);
    }
}

/// How a stored connection authenticates.
pub struct ConnectionCredentials {
    pub auth_type: AuthType,
    pub placement: Placement,
    pub credentials: Credentials<Secret>,
}

/// Stores a service and a connected connection of it.
pub async fn store_connection(
    store: &Store,
    link: &str,
    service_name: &str,
    base_url: &str,
    auth: ConnectionCredentials,
    metadata: &[(&str, &str)],
) -> Result<(), junction_host::store::StoreError> {
    store
        .create_service(
            &Service {
                name: service_name.to_owned(),
                auth_type: auth.auth_type,
                base_url: Some(base_url.to_owned()),
                allowed_hosts: Vec::new(),
                placement: auth.placement,
                oauth: None,
                has_client_secret: false,
                problem: None,
                created_at_ms: now_ms(),
            },
            None,
        )
        .await?;
    store
        .create_connection(&Connection {
            link_name: link.to_owned(),
            end_user: None,
            service: service_name.to_owned(),
            status: ConnectionStatus::Connected,
            scopes: vec![],
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            credentials: auth.credentials,
            last_error: None,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
            last_refresh_ms: None,
            history: Vec::new(),
        })
        .await
}

/// A manifest with only a timeout and memory cap.
pub fn limits(timeout: Duration, memory_mb: u64) -> Manifest {
    Manifest::from_json(&format!(
        r#"{{"limits": {{"timeout-ms": {}, "memory-mb": {memory_mb}}}}}"#,
        timeout.as_millis()
    ))
    .expect("manifest")
}

pub fn bearer(token: &str) -> Credentials<Secret> {
    Credentials::Bearer {
        token: Secret::new(token.to_owned()),
    }
}

/// The `error` the probe plugin reported for a call; panics when there is none.
pub fn call_error(record: &ExecutionRecord) -> String {
    let output = record
        .output()
        .unwrap_or_else(|| panic!("probe failed: {record:#?}"));
    output["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {output}"))
        .to_owned()
}

/// The values of header `name` in a plugin's output that lists a response's
/// headers as `[name, value]` pairs (the probes' and the 0.1.0 plugin's
/// `headers`); panics when there is no such list.
pub fn header_values<'a>(output: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    output["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("headers as pairs: {output}"))
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap_or_default())
        .collect()
}
