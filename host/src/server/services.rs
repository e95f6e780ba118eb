//! `/v1/services`: the third-party APIs connections belong to, and how
//! credentials are attached to their requests.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, blocking};
use crate::runtime::HostPattern;
use crate::store::{AuthType, Placement, Service, now_ms, validate_service_name};

/// A service definition as sent by a client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// Unique name (a-z first, then a-z, 0-9, `_`, `-`; at most 63). On PUT
    /// it may be left out; if given it must match the path.
    #[serde(default)]
    pub name: Option<String>,
    /// `api-key`, `basic` or `bearer` (`oauth2` arrives with the OAuth flows).
    pub auth_type: AuthType,
    /// API base URL; `{key}` takes a connection's metadata value.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra origins credentials may go to.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How credentials are attached; `Authorization: Bearer {token}` when absent.
    #[serde(default)]
    pub placement: Option<Placement>,
}

/// Checks a service definition and builds the stored form.
fn build_service(
    name: String,
    input: ServiceInput,
    created_at_ms: u64,
) -> Result<Service, ApiError> {
    validate_service_name(&name).map_err(ApiError::invalid)?;
    // A base URL that starts with a placeholder (`{api_domain}`) is entirely
    // captured at connect time; otherwise the rest must already be a URL.
    if let Some(base) = input.base_url.as_ref().filter(|b| !b.starts_with('{')) {
        let probe = base.replace(['{', '}'], "");
        let url = url::Url::parse(&probe)
            .map_err(|e| ApiError::invalid(format!("base_url `{base}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::invalid(format!(
                "base_url `{base}` must be http or https"
            )));
        }
    }
    for host in &input.allowed_hosts {
        HostPattern::parse(host).map_err(|e| ApiError::invalid(format!("allowed_hosts: {e}")))?;
    }
    let placement = match (input.auth_type, input.placement) {
        (AuthType::Basic, _) => Placement::Basic { username: None },
        (_, Some(placement)) => placement,
        (_, None) => Placement::bearer(),
    };
    match &placement {
        Placement::Header { name, template } => {
            if name.trim().is_empty() {
                return Err(ApiError::invalid("placement.name (the header) is empty"));
            }
            if !template.contains("{token}") {
                return Err(ApiError::invalid(format!(
                    "placement.template `{template}` must contain {{token}}"
                )));
            }
        }
        Placement::Query { name } if name.trim().is_empty() => {
            return Err(ApiError::invalid(
                "placement.name (the query parameter) is empty",
            ));
        }
        _ => {}
    }
    Ok(Service {
        name,
        auth_type: input.auth_type,
        base_url: input.base_url,
        allowed_hosts: input.allowed_hosts,
        placement,
        created_at_ms,
    })
}

/// Lists every service.
#[utoipa::path(
    get,
    path = "/v1/services",
    tag = "services",
    responses((status = 200, body = [Service]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_services(
    State(state): State<AppState>,
) -> Result<Json<Vec<Service>>, ApiError> {
    let store = state.store.clone();
    Ok(Json(blocking(move || store.services()).await?))
}

/// Creates a service.
#[utoipa::path(
    post,
    path = "/v1/services",
    tag = "services",
    request_body(content = ServiceInput, content_type = "application/json"),
    responses(
        (status = 201, body = Service),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)
    )
)]
pub(crate) async fn create_service(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("the service needs a `name`"))?;
    let service = build_service(name, input, now_ms())?;
    let store = state.store.clone();
    let stored = service.clone();
    blocking(move || store.create_service(&stored)).await?;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Shows a service.
#[utoipa::path(
    get,
    path = "/v1/services/{name}",
    tag = "services",
    params(("name" = String, Path, description = "The service's name")),
    responses(
        (status = 200, body = Service),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Service>, ApiError> {
    let store = state.store.clone();
    let lookup = name.clone();
    blocking(move || store.service(&lookup))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no service named `{name}`")))
}

/// Replaces a service's definition.
#[utoipa::path(
    put,
    path = "/v1/services/{name}",
    tag = "services",
    params(("name" = String, Path, description = "The service's name")),
    request_body(content = ServiceInput, content_type = "application/json"),
    responses(
        (status = 200, body = Service),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn update_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<Json<Service>, ApiError> {
    if let Some(body_name) = &input.name
        && *body_name != name
    {
        return Err(ApiError::invalid(format!(
            "a service cannot be renamed (`{name}` in the path, `{body_name}` in the body)"
        )));
    }
    let store = state.store.clone();
    let lookup = name.clone();
    let existing = blocking(move || store.service(&lookup))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no service named `{name}`")))?;
    if existing.auth_type != input.auth_type {
        return Err(ApiError::invalid(format!(
            "service `{name}` uses {}; its connections' credentials would no longer fit {}",
            existing.auth_type.as_str(),
            input.auth_type.as_str()
        )));
    }
    let service = build_service(name, input, existing.created_at_ms)?;
    let store = state.store.clone();
    let stored = service.clone();
    blocking(move || store.update_service(&stored)).await?;
    Ok(Json(service))
}

/// Deletes a service no connection uses.
#[utoipa::path(
    delete,
    path = "/v1/services/{name}",
    tag = "services",
    params(("name" = String, Path, description = "The service's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Connections still use it", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    blocking(move || store.delete_service(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
