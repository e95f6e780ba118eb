//! Plugins: deploying a version (and putting its triggers into effect),
//! listing and showing them with how the registry runs them, rolling back,
//! deleting, and running one now with an event. The API and the console
//! both call these; an upload's wire form (multipart, a form) is theirs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::registry::{Deployed, LoadedFrom, Registry, RegistryError, Upload};
use junction_core::{Event, ExecutionRecord, FieldError, new_id, now_ms};
use junction_events::Events;
use junction_store::{Change, Encoded, PluginRecord, PluginVersion, Store};

/// A plugin as listed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginSummary {
    /// Its name.
    pub name: String,
    /// The version that runs.
    pub active_version: u32,
    /// The active component's sha256.
    pub sha256: String,
    /// The active component's size in bytes.
    pub size: u64,
    /// The language the active version was written in, when its component
    /// says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<junction_core::Language>,
    /// When the first version was uploaded.
    pub created_at_ms: u64,
    /// When a version was last uploaded or activated.
    pub updated_at_ms: u64,
    /// Connections the active version's manifest requests.
    pub requested_connections: Vec<String>,
    /// Connections it may use.
    pub granted_connections: Vec<String>,
    /// Requested connections it was not granted.
    pub missing_connections: Vec<String>,
    /// Origins it may call without credentials.
    pub allowed_hosts: Vec<String>,
    /// Its triggers, as in the manifest.
    #[schema(value_type = Vec<Object>)]
    pub triggers: Vec<serde_json::Value>,
    /// How many versions are stored.
    pub version_count: usize,
    /// How the running copy was loaded; absent when it could not be.
    pub loaded_from: Option<LoadedFrom>,
    /// Why it cannot run, when it cannot.
    pub load_error: Option<String>,
}

/// A plugin with every version.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: PluginSummary,
    /// Every version, oldest first.
    pub versions: Vec<PluginVersion>,
}

/// How to run a plugin now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The event kind; `invoke` when absent.
    #[serde(default)]
    pub kind: Option<String>,
    /// The event payload (any JSON), kept as it was sent: the plugin gets
    /// the same text, and nothing is parsed into a tree only to be written
    /// out again.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Option<Box<serde_json::value::RawValue>>,
    /// The event id (for deduplication); a new one when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The end user to run for: the plugin's requests use their
    /// connections (an API key scoped to an end user sets it).
    #[serde(default)]
    pub end_user: Option<String>,
}

/// Which version to make active.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// A stored version; the one before the active version when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The summary of `record`, with how the registry runs it.
pub fn summary(registry: &Registry, record: &PluginRecord) -> PluginSummary {
    let active = record.active();
    let running = registry.get(&record.name);
    PluginSummary {
        name: record.name.clone(),
        active_version: record.active_version,
        sha256: active.map(|v| v.sha256.clone()).unwrap_or_default(),
        size: active.map(|v| v.size).unwrap_or(0),
        language: active.and_then(|v| v.language),
        created_at_ms: record.created_at_ms,
        updated_at_ms: record.updated_at_ms,
        requested_connections: active
            .map(|v| v.manifest.connections.clone())
            .unwrap_or_default(),
        granted_connections: active
            .map(|v| v.granted_connections.clone())
            .unwrap_or_default(),
        missing_connections: active
            .map(|v| v.missing_connections.clone())
            .unwrap_or_default(),
        allowed_hosts: active
            .map(|v| v.manifest.allowed_hosts.clone())
            .unwrap_or_default(),
        triggers: active
            .map(|v| v.manifest.triggers.clone())
            .unwrap_or_default(),
        version_count: record.versions.len(),
        loaded_from: running
            .filter(|p| p.version == record.active_version)
            .map(|p| p.loaded_from),
        load_error: registry.load_error(&record.name),
    }
}

/// Every plugin.
pub async fn list(store: &Store, registry: &Registry) -> Result<Vec<PluginSummary>, AppError> {
    let records = store.plugins().await?;
    Ok(records.iter().map(|r| summary(registry, r)).collect())
}

async fn record(store: &Store, name: &str) -> Result<PluginRecord, AppError> {
    store
        .plugin(name)
        .await?
        .ok_or_else(|| RegistryError::NotFound(name.to_owned()).into())
}

/// The plugin called `name`, with every version.
pub async fn get(store: &Store, registry: &Registry, name: &str) -> Result<PluginDetail, AppError> {
    let record = record(store, name).await?;
    Ok(PluginDetail {
        summary: summary(registry, &record),
        versions: record.versions.clone(),
    })
}

/// Stores and activates an upload, and puts its triggers into effect.
pub async fn deploy(
    registry: &Registry,
    events: &Events,
    upload: Upload,
) -> Result<Deployed, AppError> {
    let name = upload.name.clone();
    let deployed = registry.upload(upload).await?;
    reload_triggers(events).await;
    registry
        .store()
        .tell_other_hosts(Change::Plugin(name))
        .await;
    Ok(deployed)
}

/// The new active version's triggers take effect at once. The deploy is
/// done when this fails; the index is rebuilt on the next start anyway.
async fn reload_triggers(events: &Events) {
    if let Err(err) = events.reload_triggers().await {
        tracing::error!(error = %err, "cannot reload the triggers after a deploy");
    }
}

/// Makes `version` of `name` active again; without one, the version before
/// the active one.
pub async fn rollback(
    store: &Store,
    registry: &Registry,
    events: &Events,
    name: &str,
    version: Option<u32>,
) -> Result<PluginDetail, AppError> {
    let version = match version {
        Some(v) => v,
        None => {
            let record = record(store, name).await?;
            record
                .versions
                .iter()
                .map(|v| v.version)
                .filter(|v| *v < record.active_version)
                .max()
                .ok_or_else(|| {
                    AppError::Conflict(format!(
                        "plugin `{name}` has no version before {}",
                        record.active_version
                    ))
                })?
        }
    };
    let record = registry.rollback(name, version).await?;
    reload_triggers(events).await;
    store
        .tell_other_hosts(Change::Plugin(name.to_owned()))
        .await;
    Ok(PluginDetail {
        summary: summary(registry, &record),
        versions: record.versions.clone(),
    })
}

/// Deletes a plugin: every version, its artifacts, its kv namespace and its triggers.
pub async fn delete(registry: &Registry, events: &Events, name: &str) -> Result<(), AppError> {
    registry.delete(name).await?;
    if let Err(err) = events.plugin_deleted(name).await {
        tracing::error!(plugin = %name, error = %err, "the plugin is deleted but its triggers could not be cleared; they are cleared on the next start");
    }
    registry
        .store()
        .tell_other_hosts(Change::Plugin(name.to_owned()))
        .await;
    Ok(())
}

/// Event kinds and ids: 1 to 128 visible ASCII characters, so they print
/// and index cleanly.
fn check_label(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::quoted(
            field,
            "must be 1 to 128 visible ASCII characters without spaces",
        ));
    }
    Ok(())
}

/// Runs the active version of `name` now with the event `request`
/// describes; its record is journaled like any other execution, and comes
/// back with its JSON.
pub async fn invoke(
    registry: &Registry,
    events: &Events,
    name: &str,
    request: InvokeRequest,
) -> Result<Encoded<ExecutionRecord>, AppError> {
    let Some(plugin) = registry.find(name).await else {
        if let Some(reason) = registry.load_error(name) {
            return Err(AppError::Unavailable(format!(
                "plugin `{name}` cannot run: {reason}"
            )));
        }
        return Err(RegistryError::NotFound(name.to_owned()).into());
    };
    let kind = request.kind.unwrap_or_else(|| "invoke".to_owned());
    check_label("kind", &kind)?;
    let id = request.id.unwrap_or_else(new_id);
    check_label("id", &id)?;
    let payload = junction_core::payload_text(request.payload);
    let max = plugin.loaded.limits().payload_bytes;
    if payload.len() > max {
        return Err(AppError::TooLarge(format!(
            "the event payload is {} bytes, above the limit of {max} bytes",
            payload.len()
        )));
    }
    if let Some(user) = &request.end_user {
        junction_core::validate_end_user(user)
            .map_err(|problem| junction_core::FieldError::new("end_user", problem))?;
    }
    let event = Event {
        id,
        kind,
        payload,
        occurred_at_ms: now_ms(),
        end_user: request.end_user,
    };
    let record = registry.runtime().execute(&plugin.loaded, event).await;
    events.metrics().execution(&record);
    // Encoded once: the journal stores these bytes and the API answers with them.
    let encoded = Arc::new(Encoded::new(record)?);
    if let Err(err) = events.journal().record(Arc::clone(&encoded)).await {
        tracing::error!(plugin = %name, execution = %encoded.value.id, error = %err, "the execution ran but its record was not stored");
    }
    // The journal lets go of its share when the batch is written, before it
    // answers; only a share still held somewhere costs a copy.
    Ok(Arc::try_unwrap(encoded).unwrap_or_else(|shared| (*shared).clone()))
}
