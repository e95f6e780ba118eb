//! `/v1/connections`: named accounts of services, the organisation's or an
//! end user's (`?end_user=` on every route names whose), and
//! `/v1/end-users`: who has connections, and deleting one with all of
//! theirs. Secrets are write-only: a response says at most
//! `has_secret: true`. What each route does is
//! [`junction_app::connections`]'s; this module is its HTTP face.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiJson, ErrorBody};
use junction_app::connections::{self as app, Owner};
pub use junction_app::connections::{
    ConnectionView, CreateConnection, CredentialsInput, EndUserDeleted, EndUserView,
};
use junction_store::ConnectionKey;

/// Whose connection a route means.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerQuery {
    /// The end user whose connection it is; absent for the organisation's.
    end_user: Option<String>,
}

/// `end_user` from a filter's query, if it is a valid id (400 naming the
/// field otherwise).
pub(crate) fn end_user_filter(end_user: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(user) = &end_user {
        app::checked_end_user(user).map_err(junction_app::AppError::from)?;
    }
    Ok(end_user)
}

impl OwnerQuery {
    /// The query, or why it cannot be read.
    pub(crate) fn read(query: Result<Query<Self>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
        end_user_filter(query.end_user.clone())?;
        Ok(query)
    }

    /// The connection `link` of this owner.
    pub(crate) fn key(&self, link: &str) -> ConnectionKey {
        ConnectionKey::new(self.end_user.as_deref(), link)
    }
}

/// Which connections the list shows.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this end user's connections.
    end_user: Option<String>,
    /// `organisation` for only the organisation's own, `all` (the default)
    /// for every connection. Filters combine: `owner=organisation` with an
    /// `end_user` matches nothing.
    owner: Option<String>,
}

/// Lists connections: every one, the organisation's, or one end user's.
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "connections",
    params(ListQuery),
    responses(
        (status = 200, body = [ConnectionView]),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn list_connections(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let organisation_only = match query.owner.as_deref() {
        None | Some("all") => false,
        Some("organisation") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "owner `{other}` is not `all` or `organisation`"
            )));
        }
    };
    let owner = match end_user_filter(query.end_user)? {
        // The organisation's own and an end user's: none is both.
        Some(_) if organisation_only => return Ok(Json(Vec::new())),
        Some(user) => Owner::EndUser(user),
        None if organisation_only => Owner::Organisation,
        None => Owner::Everyone,
    };
    Ok(Json(app::list(&state.store, &owner).await?))
}

/// Creates a connection with static credentials, the organisation's or
/// (with `end_user`) an end user's.
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
        (status = 409, description = "The link name is taken (for that end user)", body = ErrorBody)
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
    params(("link" = String, Path, description = "The link name"), OwnerQuery),
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn get_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
    owner: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<Json<ConnectionView>, ApiError> {
    let owner = OwnerQuery::read(owner)?;
    Ok(Json(app::get(&state.store, &owner.key(&link)).await?))
}

/// Deletes a connection and its stored credentials.
#[utoipa::path(
    delete,
    path = "/v1/connections/{link}",
    tag = "connections",
    params(("link" = String, Path, description = "The link name"), OwnerQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub(crate) async fn delete_connection(
    State(state): State<AppState>,
    Path(link): Path<String>,
    owner: Result<Query<OwnerQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let owner = OwnerQuery::read(owner)?;
    app::delete(&state.store, &owner.key(&link)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the end users that have connections.
#[utoipa::path(
    get,
    path = "/v1/end-users",
    tag = "end-users",
    responses((status = 200, body = [EndUserView]), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_end_users(
    State(state): State<AppState>,
) -> Result<Json<Vec<EndUserView>>, ApiError> {
    Ok(Json(app::end_users(&state.store).await?))
}

/// Lists one end user's connections.
#[utoipa::path(
    get,
    path = "/v1/end-users/{id}/connections",
    tag = "end-users",
    params(("id" = String, Path, description = "The end user's id")),
    responses(
        (status = 200, body = [ConnectionView]),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)
    )
)]
pub(crate) async fn end_user_connections(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    Ok(Json(app::list(&state.store, &Owner::EndUser(id)).await?))
}

/// Deletes an end user: revokes their OAuth tokens at the providers and
/// removes every connection they have.
#[utoipa::path(
    delete,
    path = "/v1/end-users/{id}",
    tag = "end-users",
    params(("id" = String, Path, description = "The end user's id")),
    responses(
        (status = 200, body = EndUserDeleted),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The end user has no connections", body = ErrorBody)
    )
)]
pub(crate) async fn delete_end_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndUserDeleted>, ApiError> {
    Ok(Json(
        app::delete_end_user(&state.store, &state.tokens, &id).await?,
    ))
}
