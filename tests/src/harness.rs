//! The real runtime and store in a temporary data directory.

use std::sync::Arc;
use std::time::Duration;

use junction_host::manifest::Manifest;
use junction_host::runtime::{
    Event, ExecutionRecord, Grants, HostPattern, LoadedPlugin, Runtime, RuntimeConfig,
};
use junction_host::store::{
    AuthType, Connection, ConnectionStatus, Credentials, Placement, Secret, Service, Store, now_ms,
};
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
        let bytes = plugins::component_bytes(package);
        let component = self.runtime.compile(&bytes).expect("compile");
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
            .load(name, &component, bytes.len(), grants, manifest)
            .expect("load")
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
