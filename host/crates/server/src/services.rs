//! `/v1/services`: the third-party APIs connections belong to, and how
//! credentials are attached to their requests.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiJson, ErrorBody};
use super::{AppState, stored};
use junction_oauth::{OAuthSettings, catalog};
use junction_runtime::HostPattern;
use junction_store::{AuthType, Placement, Secret, Service, now_ms, validate_service_name};

/// A service definition as sent by a client. No `Debug`: it may hold a
/// client secret.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// Unique name (a-z first, then a-z, 0-9, `_`, `-`; at most 63). On PUT
    /// it may be left out; if given it must match the path.
    #[serde(default)]
    pub name: Option<String>,
    /// `oauth2`, `api-key`, `basic` or `bearer`; taken from the catalog entry when `catalog` is given.
    #[serde(default)]
    pub auth_type: Option<AuthType>,
    /// Configure a catalog entry (its id, e.g. `google`): its endpoints,
    /// scopes and quirks are filled in; give `client_id` and `client_secret`.
    #[serde(default)]
    pub catalog: Option<String>,
    /// The OAuth client id, with `catalog`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// API base URL; `{key}` takes a connection's metadata value.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Extra origins credentials may go to.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How credentials are attached; `Authorization: Bearer {token}` when absent.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// OAuth 2.0 settings; required for `oauth2`, refused otherwise.
    #[serde(default)]
    pub oauth: Option<OAuthSettings>,
    /// The OAuth client secret. Write-only: stored sealed, never returned
    /// (`has_client_secret` says whether one is stored). On PUT, absent keeps it.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Checks a service definition and builds the stored form.
fn build_service(
    name: String,
    input: ServiceInput,
    created_at_ms: u64,
) -> Result<Service, ApiError> {
    validate_service_name(&name).map_err(ApiError::invalid)?;
    if input.catalog.is_some() || input.client_id.is_some() {
        return Err(ApiError::invalid(
            "`catalog` and `client_id` configure a catalog entry when a service is created; to change one, send its full definition",
        ));
    }
    let auth_type = input.auth_type.ok_or_else(|| {
        ApiError::invalid("`auth_type` is required (oauth2, api-key, basic or bearer)")
    })?;
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
    let placement = match (auth_type, input.placement) {
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
    match (auth_type, &input.oauth) {
        (AuthType::Oauth2, None) => {
            return Err(ApiError::invalid(
                "an oauth2 service needs `oauth` settings (client_id, token_url, ...)",
            ));
        }
        (AuthType::Oauth2, Some(oauth)) => oauth.validate().map_err(ApiError::invalid)?,
        (other, Some(_)) => {
            return Err(ApiError::invalid(format!(
                "`oauth` settings are for oauth2 services, not {}",
                other.as_str()
            )));
        }
        (_, None) => {}
    }
    if input.client_secret.is_some() && auth_type != AuthType::Oauth2 {
        return Err(ApiError::invalid(
            "`client_secret` is for oauth2 services; a connection's own secret goes in its credentials",
        ));
    }
    if input.client_secret.as_deref() == Some("") {
        return Err(ApiError::invalid("`client_secret` is empty"));
    }
    Ok(Service {
        name,
        auth_type,
        base_url: input.base_url,
        allowed_hosts: input.allowed_hosts,
        placement,
        oauth: input.oauth,
        has_client_secret: false,
        problem: None,
        created_at_ms,
    })
}

/// Refuses a confidential client without a secret (stored or given).
fn require_secret(
    service: &Service,
    secret: Option<&Secret>,
    stored: bool,
) -> Result<(), ApiError> {
    let needs = service
        .oauth
        .as_ref()
        .is_some_and(OAuthSettings::needs_client_secret);
    if needs && secret.is_none() && !stored {
        return Err(ApiError::invalid(format!(
            "service `{}` is a confidential client (client_credentials, HTTP Basic client auth, or no PKCE): give its `client_secret`",
            service.name
        )));
    }
    Ok(())
}

/// A catalog entry turned into a full definition, with the client id and
/// secret (and optionally the name and base URL) from `input`.
fn from_catalog(id: &str, input: ServiceInput) -> Result<ServiceInput, ApiError> {
    let entry = catalog::entry(id).map_err(|e| match e {
        catalog::CatalogError::Unknown(_) => ApiError::not_found(e.to_string()),
        catalog::CatalogError::Invalid(_) => ApiError::internal(e),
    })?;
    if input.oauth.is_some() || input.placement.is_some() || input.auth_type.is_some() {
        return Err(ApiError::invalid(format!(
            "catalog entry `{id}` brings its own auth type, placement and OAuth settings; give only name, base_url, client_id and client_secret"
        )));
    }
    let client_id = match (entry.auth_type, input.client_id.as_deref()) {
        (AuthType::Oauth2, None) | (AuthType::Oauth2, Some("")) => {
            return Err(ApiError::invalid(format!(
                "configuring `{id}` needs the `client_id` (and usually `client_secret`) of your app registered with {}; see {}",
                entry.display_name, entry.docs
            )));
        }
        (AuthType::Oauth2, Some(client_id)) => client_id.to_owned(),
        (_, Some(_)) => {
            return Err(ApiError::invalid(format!(
                "`{id}` uses {} credentials, set on each connection; it has no client id",
                entry.auth_type.as_str()
            )));
        }
        (_, None) => String::new(),
    };
    let name = input.name.clone().unwrap_or_else(|| entry.id.clone());
    let template = entry
        .to_service(&name, &client_id)
        .map_err(ApiError::internal)?;
    Ok(ServiceInput {
        name: Some(name),
        auth_type: Some(template.auth_type),
        catalog: None,
        client_id: None,
        base_url: input.base_url.or(template.base_url),
        allowed_hosts: if input.allowed_hosts.is_empty() {
            template.allowed_hosts
        } else {
            input.allowed_hosts
        },
        placement: Some(template.placement),
        oauth: template.oauth,
        client_secret: input.client_secret,
    })
}

/// A service as listed: stored ones (custom, or configured from the
/// catalog) and catalog entries not configured yet.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceListing {
    /// The definition (for an unconfigured catalog entry, its template).
    #[serde(flatten)]
    pub service: Service,
    /// `custom` or `catalog`.
    pub source: String,
    /// Whether it is stored and usable for connections.
    pub configured: bool,
    /// The provider's name, for catalog entries.
    pub display_name: Option<String>,
    /// The catalog category.
    pub category: Option<String>,
    /// The provider's authentication docs.
    pub docs: Option<String>,
}

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
    let store = state.store.clone();
    let stored = stored(async move { store.services().await }).await?;
    let entries = catalog::entries().map_err(ApiError::internal)?;
    let mut listing: Vec<ServiceListing> = stored
        .into_iter()
        .map(|service| {
            let entry = entries.iter().find(|e| e.id == service.name);
            ServiceListing {
                source: if entry.is_some() { "catalog" } else { "custom" }.to_owned(),
                configured: true,
                display_name: entry.map(|e| e.display_name.clone()),
                category: entry.map(|e| e.category.clone()),
                docs: entry.map(|e| e.docs.clone()),
                service,
            }
        })
        .collect();
    for entry in entries {
        if listing.iter().any(|l| l.service.name == entry.id) {
            continue;
        }
        listing.push(ServiceListing {
            service: entry
                .to_service(&entry.id, "")
                .map_err(ApiError::internal)?,
            source: "catalog".to_owned(),
            configured: false,
            display_name: Some(entry.display_name.clone()),
            category: Some(entry.category.clone()),
            docs: Some(entry.docs.clone()),
        });
    }
    Ok(Json(listing))
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
    let input = match input.catalog.clone() {
        Some(id) => from_catalog(&id, input)?,
        None => input,
    };
    let name = input
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("the service needs a `name`"))?;
    let mut input = input;
    if let Some(settings) = input.oauth.as_mut() {
        state
            .oauth
            .discover(settings)
            .await
            .map_err(|e| ApiError::invalid(format!("oauth.issuer: {e}")))?;
    }
    let secret = input.client_secret.clone().map(Secret::new);
    let service = build_service(name, input, now_ms())?;
    require_secret(&service, secret.as_ref(), false)?;
    let store = state.store.clone();
    let created = stored(async move {
        store.create_service(&service, secret.as_ref()).await?;
        store.service(&service.name).await
    })
    .await?
    .ok_or_else(|| ApiError::internal("the new service was not stored"))?;
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
    let store = state.store.clone();
    let lookup = name.clone();
    stored(async move { store.service(&lookup).await })
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
        (status = 404, body = ErrorBody),
        (status = 409, description = "The body names another service: services are never renamed", body = ErrorBody)
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
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "a service cannot be renamed (`{name}` in the path, `{body_name}` in the body)"
            ),
        ));
    }
    let store = state.store.clone();
    let lookup = name.clone();
    let existing = stored(async move { store.service(&lookup).await })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no service named `{name}`")))?;
    if input.auth_type.is_some_and(|t| t != existing.auth_type) {
        return Err(ApiError::invalid(format!(
            "service `{name}` uses {}; its connections' credentials would no longer fit {}",
            existing.auth_type.as_str(),
            input.auth_type.map(AuthType::as_str).unwrap_or_default()
        )));
    }
    let secret = input.client_secret.clone().map(Secret::new);
    let service = build_service(name, input, existing.created_at_ms)?;
    require_secret(&service, secret.as_ref(), existing.has_client_secret)?;
    let store = state.store.clone();
    let updated = stored(async move {
        store.update_service(&service, secret.as_ref()).await?;
        store.service(&service.name).await
    })
    .await?
    .ok_or_else(|| ApiError::internal("the service was not stored"))?;
    Ok(Json(updated))
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
    stored(async move { store.delete_service(&name).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
