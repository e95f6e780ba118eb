//! The plugin registry: validates uploads (size, encoding, world, manifest,
//! name, grants), precompiles each component once and stores it with its
//! artifact, keeps every version (the newest active, rollback to any), and
//! holds the active version of every plugin pre-linked in memory. On start
//! it loads every active plugin from its stored artifact, recompiling only
//! when the artifact was made by an incompatible engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use junction_core::manifest::Manifest;
use junction_events::{Executor, NotRunnable};
use junction_runtime::{Grants, HostPattern, LoadError, LoadedPlugin, Runtime};
use junction_store::{
    NewVersion, PluginRecord, PluginVersion, Store, StoreError, validate_plugin_name,
};

/// Largest component accepted by default: room for a Python plugin
/// (componentize-py puts CPython inside; hello is about 18 MB) or a
/// JavaScript one (SpiderMonkey inside; about 12 MB).
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// How the running copy of a plugin was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadedFrom {
    /// Compiled from the component (upload, or an artifact of another engine).
    Compiled,
    /// Loaded from the stored precompiled artifact.
    Artifact,
}

/// The version of a plugin that runs, ready to instantiate.
pub struct ActivePlugin {
    /// Its version number.
    pub version: u32,
    /// Its component's sha256.
    pub sha256: String,
    /// How it was loaded.
    pub loaded_from: LoadedFrom,
    /// The pre-linked component and its grants and limits.
    pub loaded: LoadedPlugin,
}

/// An upload.
pub struct Upload {
    /// The plugin's name.
    pub name: String,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// Its manifest.
    pub manifest: Manifest,
    /// Explicit connection grants; `None` grants what the manifest requests
    /// and exists.
    pub grants: Option<Vec<String>>,
}

/// What an upload produced.
pub struct Deployed {
    /// The plugin after the upload.
    pub record: PluginRecord,
    /// The new version.
    pub version: PluginVersion,
    /// Time spent compiling, in milliseconds.
    pub compile_ms: f64,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    InvalidName(String),
    #[error("the component is {size} bytes, above the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the manifest: {0}")]
    Manifest(String),
    #[error("cannot grant connection `{0}`: no connection has that link name")]
    UnknownConnection(String),
    #[error("cannot grant connection `{0}`: the manifest does not request it")]
    NotRequested(String),
    #[error("no plugin named `{0}`")]
    NotFound(String),
    #[error("plugin `{name}` has no version {version}")]
    NoSuchVersion { name: String, version: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store did not keep the new version of plugin `{0}`")]
    VersionNotKept(String),
    #[error("a background task failed")]
    Worker(#[from] tokio::task::JoinError),
}

/// Every plugin's active version, in memory.
pub struct Registry {
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    compatibility: String,
    max_component_bytes: usize,
    active: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    /// Plugins whose active version could not be loaded, which version
    /// (number and sha256), and why.
    broken: RwLock<BTreeMap<String, Broken>>,
    /// Serialises store commits and in-memory swaps, so the active map
    /// always matches the store's active versions.
    commit: tokio::sync::Mutex<()>,
}

/// An active version that could not be loaded.
struct Broken {
    version: u32,
    sha256: String,
    reason: String,
}

/// What [`Registry::load_all`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadReport {
    /// Plugins loaded from their stored artifact.
    pub from_artifact: usize,
    /// Plugins recompiled (artifact missing or of another engine).
    pub compiled: usize,
    /// Plugins that could not be loaded.
    pub failed: usize,
}

impl Registry {
    /// An empty registry; call [`Registry::load_all`] to serve what is stored.
    pub fn new(runtime: Arc<Runtime>, store: Arc<Store>, max_component_bytes: usize) -> Self {
        let compatibility = runtime.compatibility_hash();
        Registry {
            store,
            runtime,
            compatibility,
            max_component_bytes,
            active: RwLock::new(HashMap::new()),
            broken: RwLock::new(BTreeMap::new()),
            commit: tokio::sync::Mutex::new(()),
        }
    }

    /// The store plugins and their artifacts are kept in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The largest component accepted.
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    /// The active version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ActivePlugin>> {
        self.active.read().ok()?.get(name).cloned()
    }

    /// The active version of `name`, looking in the store when it is not
    /// here: another host sharing the store may have deployed it a moment
    /// ago, before this one heard.
    pub async fn find(&self, name: &str) -> Option<Arc<ActivePlugin>> {
        if let Some(found) = self.get(name) {
            return Some(found);
        }
        if self.load_error(name).is_some() || self.store.backend().cluster().is_none() {
            return None;
        }
        if let Err(err) = self.refresh(name).await {
            tracing::warn!(plugin = %name, error = %err, "cannot look for a plugin in the store");
        }
        self.get(name)
    }

    /// How many plugins are ready to run.
    pub fn active_count(&self) -> usize {
        self.active.read().map(|a| a.len()).unwrap_or(0)
    }

    /// Why `name`'s active version could not be loaded, if it could not.
    pub fn load_error(&self, name: &str) -> Option<String> {
        Some(self.broken.read().ok()?.get(name)?.reason.clone())
    }

    fn set_active(&self, name: &str, plugin: Option<ActivePlugin>) {
        if let Ok(mut active) = self.active.write() {
            match plugin {
                Some(plugin) => active.insert(name.to_owned(), Arc::new(plugin)),
                None => active.remove(name),
            };
        }
        if let Ok(mut broken) = self.broken.write() {
            broken.remove(name);
        }
    }

    fn set_broken(&self, name: &str, version: &PluginVersion, err: &RegistryError) {
        if let Ok(mut broken) = self.broken.write() {
            broken.insert(
                name.to_owned(),
                Broken {
                    version: version.version,
                    sha256: version.sha256.clone(),
                    reason: err.to_string(),
                },
            );
        }
    }

    /// Whether what runs of `name` (or failed to load) is `version`.
    fn holds(&self, name: &str, version: &PluginVersion) -> bool {
        let running = self
            .get(name)
            .is_some_and(|p| p.version == version.version && p.sha256 == version.sha256);
        running
            || self.broken.read().is_ok_and(|broken| {
                broken
                    .get(name)
                    .is_some_and(|b| b.version == version.version && b.sha256 == version.sha256)
            })
    }

    /// Brings `name` in line with the store after another host deployed,
    /// rolled back or deleted it: loads its active version (from this
    /// engine's artifact, compiling only when there is none) unless that
    /// version already runs here. Whether anything changed.
    pub async fn refresh(&self, name: &str) -> Result<bool, RegistryError> {
        let _commit = self.commit.lock().await;
        let record = self.store.plugin(name).await?;
        self.refresh_locked(name, record.as_ref()).await
    }

    /// [`Registry::refresh`] for every plugin: the stored ones, and those
    /// that run here but are no longer stored. How many changed.
    pub async fn refresh_all(&self) -> Result<usize, RegistryError> {
        let _commit = self.commit.lock().await;
        let records = self.store.plugins().await?;
        let mut changed = 0;
        for record in &records {
            if self.refresh_locked(&record.name, Some(record)).await? {
                changed += 1;
            }
        }
        let known: Vec<String> = self
            .active
            .read()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default();
        for name in known {
            if !records.iter().any(|r| r.name == name) && self.refresh_locked(&name, None).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    async fn refresh_locked(
        &self,
        name: &str,
        record: Option<&PluginRecord>,
    ) -> Result<bool, RegistryError> {
        let Some(version) = record.and_then(|r| r.active()) else {
            let was_known = self.get(name).is_some() || self.load_error(name).is_some();
            self.set_active(name, None);
            if was_known {
                tracing::info!(plugin = %name, "plugin deleted on another host");
            }
            return Ok(was_known);
        };
        if self.holds(name, version) {
            return Ok(false);
        }
        let loaded = match self.load_component(&version.sha256).await {
            Ok((component, from)) => self.link(name, version, &component).map(|l| (l, from)),
            Err(err) => Err(err),
        };
        match loaded {
            Ok((loaded, from)) => {
                self.set_active(
                    name,
                    Some(ActivePlugin {
                        version: version.version,
                        sha256: version.sha256.clone(),
                        loaded_from: from,
                        loaded,
                    }),
                );
                tracing::info!(plugin = %name, version = version.version, loaded_from = ?from, "plugin version from another host loaded");
            }
            Err(err) => {
                tracing::error!(plugin = %name, version = version.version, error = %err, "cannot load the version another host made active; it will not run here");
                self.set_active(name, None);
                self.set_broken(name, version, &err);
            }
        }
        Ok(true)
    }

    /// Loads the active version of every stored plugin.
    pub async fn load_all(&self) -> Result<LoadReport, RegistryError> {
        let records = self.store.plugins().await?;
        let mut report = LoadReport::default();
        // Several plugins may share a component; load each one once.
        let mut components: HashMap<String, (Component, LoadedFrom)> = HashMap::new();
        for record in records {
            let Some(version) = record.active().cloned() else {
                continue;
            };
            let loaded = match components.get(&version.sha256) {
                Some(found) => Ok(found.clone()),
                None => self.load_component(&version.sha256).await,
            };
            let result = loaded.and_then(|(component, from)| {
                components.insert(version.sha256.clone(), (component.clone(), from));
                let plugin = self.link(&record.name, &version, &component)?;
                Ok((plugin, from))
            });
            match result {
                Ok((loaded, from)) => {
                    match from {
                        LoadedFrom::Artifact => report.from_artifact += 1,
                        LoadedFrom::Compiled => report.compiled += 1,
                    }
                    self.set_active(
                        &record.name,
                        Some(ActivePlugin {
                            version: version.version,
                            sha256: version.sha256.clone(),
                            loaded_from: from,
                            loaded,
                        }),
                    );
                }
                Err(err) => {
                    report.failed += 1;
                    tracing::error!(plugin = %record.name, version = version.version, error = %err, "cannot load plugin; it will not run until it is uploaded again");
                    self.set_broken(&record.name, &version, &err);
                }
            }
        }
        Ok(report)
    }

    /// The component `sha256` from its artifact, or recompiled from its
    /// bytes when no artifact of this engine exists (and then stored).
    async fn load_component(&self, sha256: &str) -> Result<(Component, LoadedFrom), RegistryError> {
        let sha = sha256.to_owned();
        match self.store.artifact(sha256, &self.compatibility).await {
            Ok(Some(artifact)) => {
                let runtime = self.runtime.clone();
                match blocking(move || runtime.deserialize_own_artifact(&artifact)).await? {
                    Ok(component) => return Ok((component, LoadedFrom::Artifact)),
                    Err(err) => {
                        tracing::warn!(sha256 = %sha, error = %err, "stored artifact does not load; recompiling")
                    }
                }
            }
            Ok(None) => {
                tracing::info!(sha256 = %sha, "no artifact for this engine; recompiling")
            }
            // A tag that does not verify means bytes this host did not
            // produce: never load them, rebuild from the component.
            Err(err) => {
                tracing::warn!(sha256 = %sha, error = %err, "stored artifact is not trusted; recompiling")
            }
        }
        let bytes = self
            .store
            .component(sha256)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "component",
                name: sha.clone(),
            })?;
        let runtime = self.runtime.clone();
        let (artifact, component) = blocking(move || {
            if hex::encode(Sha256::digest(&bytes)) != sha {
                return Err(RegistryError::Store(StoreError::Corrupt(
                    format!("components/{sha}"),
                    "the component does not match its sha256".into(),
                )));
            }
            Ok(runtime.precompile(&bytes)?)
        })
        .await??;
        self.store
            .put_artifact(sha256, &self.compatibility, &artifact)
            .await?;
        Ok((component, LoadedFrom::Compiled))
    }

    fn link(
        &self,
        name: &str,
        version: &PluginVersion,
        component: &Component,
    ) -> Result<LoadedPlugin, RegistryError> {
        let mut grants = Grants {
            connections: version.granted_connections.clone(),
            requested: version.manifest.connections.clone(),
            org_fallback: version.manifest.org_fallback.clone(),
            allowed_hosts: Vec::new(),
        };
        for host in &version.manifest.allowed_hosts {
            grants
                .allowed_hosts
                .push(HostPattern::parse(host).map_err(RegistryError::Manifest)?);
        }
        Ok(self.runtime.load(
            name,
            component,
            version.size as usize,
            grants,
            &version.manifest,
        )?)
    }

    /// Which requested connections to grant: the explicit list (each must
    /// exist and be requested) or every requested one that exists.
    /// A tool's input schema, asked of the plugin itself (in its sandbox,
    /// with its limits): what the Rust SDK derives from the type named by
    /// `export!(handle, tool_input = T)`.
    async fn described_input(
        &self,
        loaded: &LoadedPlugin,
    ) -> Result<serde_json::Value, RegistryError> {
        let asked = junction_core::Event::new(junction_core::manifest::TOOL_SCHEMA_KIND, "{}");
        let record = self.runtime.execute(loaded, asked).await;
        let unanswered = |why: String| {
            RegistryError::Manifest(format!(
                "tool.input-schema is absent and the plugin did not describe its input ({why}); declare input-schema in the manifest, or export the handler with `junction_sdk::export!(handle, tool_input = YourArgs)`"
            ))
        };
        match record.output() {
            Some(schema) => {
                junction_core::manifest::check_input_schema(schema).map_err(unanswered)?;
                Ok(schema.clone())
            }
            None => Err(unanswered(
                record
                    .failure()
                    .map(|(_, message)| message.to_owned())
                    .unwrap_or_default(),
            )),
        }
    }

    async fn resolve_grants(
        &self,
        manifest: &Manifest,
        explicit: Option<&[String]>,
    ) -> Result<(Vec<String>, Vec<String>), RegistryError> {
        let existing: Vec<String> = self
            .store
            .sealed_connections()
            .await?
            .into_iter()
            .map(|c| c.link_name)
            .collect();
        let granted: Vec<String> = match explicit {
            Some(list) => {
                for link in list {
                    if !existing.contains(link) {
                        return Err(RegistryError::UnknownConnection(link.clone()));
                    }
                    if !manifest.connections.contains(link) {
                        return Err(RegistryError::NotRequested(link.clone()));
                    }
                }
                let mut list = list.to_vec();
                list.dedup();
                list
            }
            None => manifest
                .connections
                .iter()
                .filter(|link| existing.contains(link))
                .cloned()
                .collect(),
        };
        let missing = manifest
            .connections
            .iter()
            .filter(|link| !granted.contains(link))
            .cloned()
            .collect();
        Ok((granted, missing))
    }

    /// Validates, precompiles and stores a new version, and makes it active.
    /// Nothing is stored unless every check passes.
    pub async fn upload(&self, upload: Upload) -> Result<Deployed, RegistryError> {
        validate_plugin_name(&upload.name).map_err(RegistryError::InvalidName)?;
        if upload.component.len() > self.max_component_bytes {
            return Err(RegistryError::TooLarge {
                size: upload.component.len(),
                max: self.max_component_bytes,
            });
        }
        upload
            .manifest
            .validate()
            .map_err(RegistryError::Manifest)?;
        let config = self.runtime.config();
        upload
            .manifest
            .resolve_limits(&config.defaults, &config.ceiling)
            .map_err(RegistryError::Manifest)?;
        let (granted, missing) = self
            .resolve_grants(&upload.manifest, upload.grants.as_deref())
            .await?;

        let runtime = self.runtime.clone();
        let bytes = Arc::new(upload.component);
        let compile_bytes = bytes.clone();
        let started = Instant::now();
        let (artifact, component) = blocking(move || runtime.precompile(&compile_bytes)).await??;
        let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
        let sha256 = hex::encode(Sha256::digest(bytes.as_slice()));
        let language = junction_runtime::component_language(&bytes);

        // Link before storing: a component the linker refuses is never kept.
        let draft = PluginVersion {
            version: 0,
            sha256: sha256.clone(),
            size: bytes.len() as u64,
            language,
            manifest: upload.manifest.clone(),
            granted_connections: granted.clone(),
            missing_connections: missing.clone(),
            created_at_ms: 0,
        };
        let loaded = self.link(&upload.name, &draft, &component)?;
        let mut manifest = upload.manifest;
        if let Some(tool) = &mut manifest.tool
            && tool.input_schema.is_none()
        {
            tool.input_schema = Some(self.described_input(&loaded).await?);
        }

        let _commit = self.commit.lock().await;
        let record = self
            .store
            .add_plugin_version(
                &upload.name,
                NewVersion {
                    component: &bytes,
                    sha256: &sha256,
                    compatibility: &self.compatibility,
                    artifact: &artifact,
                    language,
                    manifest,
                    granted_connections: granted,
                    missing_connections: missing,
                },
            )
            .await?;
        let version = record
            .active()
            .cloned()
            .ok_or_else(|| RegistryError::VersionNotKept(upload.name.clone()))?;
        self.set_active(
            &upload.name,
            Some(ActivePlugin {
                version: version.version,
                sha256: version.sha256.clone(),
                loaded_from: LoadedFrom::Compiled,
                loaded,
            }),
        );
        tracing::info!(plugin = %upload.name, version = version.version, sha256 = %version.sha256, compile_ms, "plugin deployed");
        Ok(Deployed {
            record,
            version,
            compile_ms,
        })
    }

    /// Makes an earlier (or any other) version active.
    pub async fn rollback(&self, name: &str, version: u32) -> Result<PluginRecord, RegistryError> {
        let _commit = self.commit.lock().await;
        let record = self
            .store
            .plugin(name)
            .await?
            .ok_or_else(|| RegistryError::NotFound(name.into()))?;
        let chosen =
            record
                .version(version)
                .cloned()
                .ok_or_else(|| RegistryError::NoSuchVersion {
                    name: name.into(),
                    version,
                })?;
        // Load first: a version that cannot run is not made active.
        let (component, from) = self.load_component(&chosen.sha256).await?;
        let loaded = self.link(name, &chosen, &component)?;
        let record = self.store.activate_plugin_version(name, version).await?;
        self.set_active(
            name,
            Some(ActivePlugin {
                version,
                sha256: chosen.sha256,
                loaded_from: from,
                loaded,
            }),
        );
        tracing::info!(plugin = %name, version, "plugin rolled back");
        Ok(record)
    }

    /// Removes a plugin, its versions, artifacts and kv namespace.
    pub async fn delete(&self, name: &str) -> Result<PluginRecord, RegistryError> {
        let _commit = self.commit.lock().await;
        let record = self
            .store
            .delete_plugin(name)
            .await
            .map_err(|err| match err {
                StoreError::NotFound { .. } => RegistryError::NotFound(name.into()),
                other => RegistryError::Store(other),
            })?;
        self.set_active(name, None);
        tracing::info!(plugin = %name, "plugin deleted");
        Ok(record)
    }
}

/// Runs blocking work (compiling, redb commits) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RegistryError> {
    Ok(tokio::task::spawn_blocking(work).await?)
}

#[async_trait::async_trait]
impl Executor for Registry {
    async fn execute(
        &self,
        plugin: &str,
        event: junction_core::Event,
    ) -> Result<junction_core::ExecutionRecord, NotRunnable> {
        match self.find(plugin).await {
            Some(active) => Ok(self.runtime.execute(&active.loaded, event).await),
            None => Err(match self.load_error(plugin) {
                Some(reason) => NotRunnable::Broken {
                    plugin: plugin.to_owned(),
                    reason,
                },
                None => NotRunnable::Deleted(plugin.to_owned()),
            }),
        }
    }
}
