//! `/v1/plugins`: upload (multipart: component, manifest, grants), list,
//! show, roll back, delete, and invoke now. What each route does is
//! [`junction_app::plugins`]'s; this module is its HTTP face, and reads
//! the multipart form of an upload.

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::api_keys::Caller;
use super::error::{ApiError, ApiJson, ErrorBody, PayloadJson};
use junction_app::plugins as app;
pub use junction_app::plugins::{InvokeRequest, PluginDetail, PluginSummary, RollbackRequest};
use junction_app::registry::Upload;
use junction_core::manifest::Manifest;
use junction_runtime::ExecutionRecord;
use junction_store::validate_plugin_name;

/// Largest manifest or grants part of an upload.
const MAX_FORM_PART: usize = 256 * 1024;

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
    /// The component (`wasm32-wasip2`), at most the upload limit (64 MiB by default).
    #[schema(format = Binary, content_media_type = "application/wasm")]
    component: Vec<u8>,
    /// The manifest as JSON: `{"connections": [...], "allowed-hosts": [...], "triggers": [...], "limits": {...}}`.
    manifest: Option<String>,
    /// JSON array of link names to grant; by default every requested connection that exists.
    grants: Option<String>,
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
    Ok(Json(app::list(&state.store, &state.registry).await?))
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
    Ok(Json(app::get(&state.store, &state.registry, &name).await?))
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
    let deployed = app::deploy(
        &state.registry,
        &state.events,
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
    let detail = app::rollback(
        &state.store,
        &state.registry,
        &state.events,
        &name,
        request.version,
    )
    .await?;
    Ok(Json(detail))
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
    app::delete(&state.registry, &state.events, &name).await?;
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
        (status = 403, description = "An API key that does not name this plugin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "Payload over the plugin's limit", body = ErrorBody),
        (status = 503, description = "The plugin's active version cannot be loaded", body = ErrorBody)
    )
)]
pub(crate) async fn invoke_plugin(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    PayloadJson(mut request): PayloadJson<InvokeRequest>,
) -> Result<axum::response::Response, ApiError> {
    // The middleware always sets it; without it nobody is trusted.
    let Some(axum::Extension(caller)) = caller else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the request carries no caller",
        ));
    };
    if let Caller::Key(key) = &caller
        && !key.plugins.contains(&name)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("API key `{}` may not invoke plugin `{name}`", key.id),
        ));
    }
    request.end_user = caller.end_user_for(request.end_user.take())?;
    let invoked = app::invoke(&state.registry, &state.events, &name, request).await?;
    // The JSON the journal stored: serialising the record again would cost
    // every invoke a second encoding.
    Ok(([(header::CONTENT_TYPE, "application/json")], invoked.bytes).into_response())
}
