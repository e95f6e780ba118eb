//! `/v1/plugins`: upload (multipart: component, manifest, grants), list,
//! show, roll back, delete, and invoke now.

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, stored};
use junction_app::registry::{Deployed, LoadedFrom, RegistryError, Upload};
use junction_core::manifest::Manifest;
use junction_runtime::{Event, ExecutionRecord, new_id};
use junction_store::{PluginRecord, PluginVersion, now_ms, validate_plugin_name};

/// Largest manifest or grants part of an upload.
const MAX_FORM_PART: usize = 256 * 1024;

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

/// What an upload did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadResponse {
    /// The plugin.
    pub name: String,
    /// The new (now active) version.
    pub version: u32,
    /// The component's sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Server-side compile time in milliseconds.
    pub compile_ms: f64,
    /// Connections granted.
    pub granted_connections: Vec<String>,
    /// Requested connections that do not exist (or were not granted); the
    /// plugin gets `unknown-connection` if it uses them.
    pub missing_connections: Vec<String>,
}

/// The multipart form of an upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The component (`wasm32-wasip2`), at most the upload limit (10 MiB by default).
    #[schema(format = Binary, content_media_type = "application/wasm")]
    component: Vec<u8>,
    /// The manifest as JSON: `{"connections": [...], "allowed-hosts": [...], "triggers": [...], "limits": {...}}`.
    manifest: Option<String>,
    /// JSON array of link names to grant; by default every requested connection that exists.
    grants: Option<String>,
}

/// How to run a plugin now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The event kind; `invoke` when absent.
    #[serde(default)]
    pub kind: Option<String>,
    /// The event payload (any JSON).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The event id (for deduplication); a new one when absent.
    #[serde(default)]
    pub id: Option<String>,
}

/// Which version to make active.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// A stored version; the one before the active version when absent.
    #[serde(default)]
    pub version: Option<u32>,
}

fn summary(state: &AppState, record: &PluginRecord) -> PluginSummary {
    let active = record.active();
    let running = state.registry.get(&record.name);
    PluginSummary {
        name: record.name.clone(),
        active_version: record.active_version,
        sha256: active.map(|v| v.sha256.clone()).unwrap_or_default(),
        size: active.map(|v| v.size).unwrap_or(0),
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
        load_error: state.registry.load_error(&record.name),
    }
}

/// Stores and activates an upload (API or console), and puts its triggers
/// into effect.
pub(crate) async fn deploy(state: &AppState, upload: Upload) -> Result<Deployed, RegistryError> {
    let deployed = state.registry.upload(upload).await?;
    reload_triggers(state).await;
    Ok(deployed)
}

/// The new active version's triggers take effect at once. The deploy is
/// done when this fails; the index is rebuilt on the next start anyway.
async fn reload_triggers(state: &AppState) {
    if let Err(err) = state.events.reload_triggers().await {
        tracing::error!(error = %err, "cannot reload the triggers after a deploy");
    }
}

/// Event kinds and ids: 1 to 128 visible ASCII characters, so they print
/// and index cleanly.
fn check_label(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(format!(
            "`{field}` must be 1 to 128 visible ASCII characters without spaces"
        )));
    }
    Ok(())
}

/// Lists every plugin.
#[utoipa::path(
    get,
    path = "/v1/plugins",
    tag = "plugins",
    responses((status = 200, body = [PluginSummary]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_plugins(
    State(state): State<AppState>,
) -> Result<Json<Vec<PluginSummary>>, ApiError> {
    let store = state.store.clone();
    let records = stored(async move { store.plugins().await }).await?;
    Ok(Json(records.iter().map(|r| summary(&state, r)).collect()))
}

async fn load_record(state: &AppState, name: &str) -> Result<PluginRecord, ApiError> {
    let store = state.store.clone();
    let owned = name.to_owned();
    stored(async move { store.plugin(&owned).await })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no plugin named `{name}`")))
}

/// Shows a plugin with every version.
#[utoipa::path(
    get,
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, body = PluginDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    let record = load_record(&state, &name).await?;
    Ok(Json(PluginDetail {
        summary: summary(&state, &record),
        versions: record.versions.clone(),
    }))
}

fn multipart_error(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("the upload is larger than the server accepts")
    } else {
        ApiError::invalid(format!(
            "the multipart body is malformed: {}",
            err.body_text()
        ))
    }
}

/// Reads one part, refusing it once it grows past `max` bytes.
pub(crate) async fn read_part(
    field: &mut axum::extract::multipart::Field<'_>,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::too_large(format!(
                "the {what} is larger than the limit of {max} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Uploads a new version of a plugin and makes it active.
///
/// The component is checked (a real component of the `junction:plugin/plugin`
/// world), precompiled once and stored content-addressed by sha256. Nothing
/// is stored when any check fails.
#[utoipa::path(
    put,
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "Lower-case letters, digits and -, at most 63")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = UploadResponse),
        (status = 400, description = "Bad name, manifest, grants or form", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, description = "Component over the upload limit", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "Not a component of the plugin world", body = ErrorBody)
    )
)]
pub(crate) async fn upload_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    validate_plugin_name(&name).map_err(ApiError::invalid)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "upload the plugin as multipart/form-data with a `component` part and a `manifest` part, not `{content_type}`"
            ),
        ));
    }
    let mut multipart = multipart
        .map_err(|e| ApiError::invalid(format!("the multipart body: {}", e.body_text())))?;
    let max = state.registry.max_component_bytes();
    let mut component = None;
    let mut manifest = None;
    let mut grants = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let part = field.name().unwrap_or("").to_owned();
        match part.as_str() {
            "component" => component = Some(read_part(&mut field, max, "component").await?),
            "manifest" => {
                let bytes = read_part(&mut field, MAX_FORM_PART, "manifest").await?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::invalid("the manifest part is not UTF-8"))?;
                // Empty, or JSON `null`: no manifest, as when the part is left out.
                if matches!(text.trim(), "" | "null") {
                    continue;
                }
                manifest =
                    Some(Manifest::from_json(&text).map_err(|e| ApiError::invalid(e.to_string()))?);
            }
            "grants" => {
                let bytes = read_part(&mut field, MAX_FORM_PART, "grants part").await?;
                // An empty part is no list: the default grants apply.
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let list: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::invalid(format!(
                        "the grants part must be a JSON array of link names: {e}"
                    ))
                })?;
                grants = Some(list);
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unexpected form part `{other}`; send `component`, `manifest` and optionally `grants`"
                )));
            }
        }
    }
    let component = component.ok_or_else(|| {
        ApiError::invalid("the upload has no `component` part with the component's bytes")
    })?;
    let deployed = deploy(
        &state,
        Upload {
            name: name.clone(),
            component,
            manifest: manifest.unwrap_or_default(),
            grants,
        },
    )
    .await?;
    let version = deployed.version;
    Ok((
        StatusCode::CREATED,
        Json(UploadResponse {
            name,
            version: version.version,
            sha256: version.sha256,
            size: version.size,
            compile_ms: deployed.compile_ms,
            granted_connections: version.granted_connections,
            missing_connections: version.missing_connections,
        }),
    ))
}

/// Makes an earlier version active.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/rollback",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    request_body(content = RollbackRequest, content_type = "application/json"),
    responses(
        (status = 200, body = PluginDetail),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No earlier version to go back to", body = ErrorBody)
    )
)]
pub(crate) async fn rollback_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Json<PluginDetail>, ApiError> {
    let version = match request.version {
        Some(v) => v,
        None => {
            let record = load_record(&state, &name).await?;
            record
                .versions
                .iter()
                .map(|v| v.version)
                .filter(|v| *v < record.active_version)
                .max()
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!(
                            "plugin `{name}` has no version before {}",
                            record.active_version
                        ),
                    )
                })?
        }
    };
    let record = state.registry.rollback(&name, version).await?;
    reload_triggers(&state).await;
    Ok(Json(PluginDetail {
        summary: summary(&state, &record),
        versions: record.versions.clone(),
    }))
}

/// Deletes a plugin: every version, its artifacts and its kv namespace.
#[utoipa::path(
    delete,
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.registry.delete(&name).await?;
    if let Err(err) = state.events.plugin_deleted(&name).await {
        tracing::error!(plugin = %name, error = %err, "the plugin is deleted but its triggers could not be cleared; they are cleared on the next start");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the active version now with an event and returns the execution record.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/invoke",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    request_body(content = InvokeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The execution record; `status` says whether it succeeded", body = ExecutionRecord),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "Payload over the plugin's limit", body = ErrorBody),
        (status = 503, description = "The plugin's active version cannot be loaded", body = ErrorBody)
    )
)]
pub(crate) async fn invoke_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<InvokeRequest>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    let Some(plugin) = state.registry.get(&name) else {
        if let Some(reason) = state.registry.load_error(&name) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin-unavailable",
                format!("plugin `{name}` cannot run: {reason}"),
            ));
        }
        return Err(RegistryError::NotFound(name).into());
    };
    let kind = request.kind.unwrap_or_else(|| "invoke".to_owned());
    check_label("kind", &kind)?;
    let id = request.id.unwrap_or_else(new_id);
    check_label("id", &id)?;
    let payload = serde_json::to_string(&request.payload).map_err(ApiError::internal)?;
    let max = plugin.loaded.limits().payload_bytes;
    if payload.len() > max {
        return Err(ApiError::too_large(format!(
            "the event payload is {} bytes, above the limit of {max} bytes",
            payload.len()
        )));
    }
    let event = Event {
        id,
        kind,
        payload,
        occurred_at_ms: now_ms(),
    };
    let record = state
        .registry
        .runtime()
        .execute(&plugin.loaded, event)
        .await;
    state.events.metrics().execution(&record);
    if let Err(err) = state.events.journal().record(record.clone()).await {
        tracing::error!(plugin = %name, execution = %record.id, error = %err, "the execution ran but its record was not stored");
    }
    Ok(Json(record))
}
