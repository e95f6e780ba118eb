//! `/v1/services`: the third-party APIs connections belong to, and how
//! credentials are attached to their requests. What each route does is
//! [`junction_app::services`]'s; this module is its HTTP face.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::{ApiError, ApiJson, ErrorBody};
use junction_app::services as app;
pub use junction_app::services::{ServiceInput, ServiceListing};
use junction_store::Service;

/// Lists every service.
#[utoipa::path(
    get,
    path = "/v1/services",
    tag = "services",
    responses((status = 200, description = "Configured services first, then catalog entries not configured yet", body = [ServiceListing]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_services(
    State(state): State<AppState>,
) -> Result<Json<Vec<ServiceListing>>, ApiError> {
    Ok(Json(app::list(&state.store).await?))
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
        (status = 404, description = "No catalog entry by that id", body = ErrorBody),
        (status = 409, body = ErrorBody)
    )
)]
pub(crate) async fn create_service(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let created = app::create(&state.store, &state.oauth, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
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
    Ok(Json(app::get(&state.store, &name).await?))
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
        (status = 404, body = ErrorBody),
        (status = 409, description = "The body names another service: services are never renamed", body = ErrorBody)
    )
)]
pub(crate) async fn update_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<Json<Service>, ApiError> {
    Ok(Json(app::update(&state.store, &name, input).await?))
}

/// Deletes a service no connection uses.
#[utoipa::path(
    delete,
    path = "/v1/services/{name}",
    tag = "services",
    params(("name" = String, Path, description = "The service's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Connections still use it", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app::delete(&state.store, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
