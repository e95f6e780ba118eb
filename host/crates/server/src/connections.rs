//! `/v1/connections`: named accounts of services with static credentials
//! (api-key, basic, bearer). Secrets are write-only: a response says at most
//! `has_secret: true`. What each route does is
//! [`junction_app::connections`]'s; this module is its HTTP face.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::error::{ApiError, ApiJson, ErrorBody};
use junction_app::connections as app;
pub use junction_app::connections::{ConnectionView, CreateConnection, CredentialsInput};

/// Lists every connection.
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "connections",
    responses((status = 200, body = [ConnectionView]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_connections(
    State(state): State<AppState>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    Ok(Json(app::list(&state.store).await?))
}

/// Creates a connection with static credentials.
#[utoipa::path(
    post,
    path = "/v1/connections",
    tag = "connections",
    request_body(content = CreateConnection, content_type = "application/json"),
    responses(
        (status = 201, body = ConnectionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 409, description = "The link name is taken", body = ErrorBody)
    )
)]
pub(crate) async fn create_connection(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let created = app::create(&state.store, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Shows a connection (never its secret).
#[utoipa::path(
    get,
    path = "/v1/connections/{link}",
    tag = "connections",
    params(("link" = String, Path, description = "The link name")),
    responses(
        (status = 200, body = ConnectionView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(app::get(&state.store, &link).await?))
}

/// Deletes a connection and its stored credentials.
#[utoipa::path(
    delete,
    path = "/v1/connections/{link}",
    tag = "connections",
    params(("link" = String, Path, description = "The link name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
) -> Result<StatusCode, ApiError> {
    app::delete(&state.store, &link).await?;
    Ok(StatusCode::NO_CONTENT)
}
