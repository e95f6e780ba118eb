//! Services: the third-party APIs connections belong to, and how
//! credentials are attached to their requests. A definition comes whole
//! or from a catalog entry; it is checked here, field by field, for the API
//! and the console alike.

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use junction_core::{FieldError, HostPattern};
use junction_oauth::{OAuth, OAuthSettings, catalog};
use junction_store::{AuthType, Placement, Secret, Service, Store, now_ms, validate_service_name};

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
) -> Result<Service, AppError> {
    validate_service_name(&name).map_err(AppError::Invalid)?;
    if input.catalog.is_some() || input.client_id.is_some() {
        return Err(AppError::Invalid(
            "`catalog` and `client_id` configure a catalog entry when a service is created; to change one, send its full definition".into(),
        ));
    }
    let auth_type = input.auth_type.ok_or_else(|| {
        FieldError::quoted(
            "auth_type",
            "is required (oauth2, api-key, basic or bearer)",
        )
    })?;
    // A base URL that starts with a placeholder (`{api_domain}`) is entirely
    // captured at connect time; otherwise the rest must already be a URL.
    if let Some(base) = input.base_url.as_ref().filter(|b| !b.starts_with('{')) {
        let probe = base.replace(['{', '}'], "");
        let url = url::Url::parse(&probe)
            .map_err(|e| FieldError::new("base_url", format!("`{base}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(
                FieldError::new("base_url", format!("`{base}` must be http or https")).into(),
            );
        }
    }
    for host in &input.allowed_hosts {
        HostPattern::parse(host)
            .map_err(|e| FieldError::new("allowed_hosts", format!("hold `{host}`: {e}")))?;
    }
    let placement = match (auth_type, input.placement) {
        (AuthType::Basic, _) => Placement::Basic { username: None },
        (_, Some(placement)) => placement,
        (_, None) => Placement::bearer(),
    };
    match &placement {
        Placement::Header { name, template } => {
            if name.trim().is_empty() {
                return Err(FieldError::new("placement.name", "(the header) is empty").into());
            }
            if !template.contains("{token}") {
                return Err(FieldError::new(
                    "placement.template",
                    format!("`{template}` must contain {{token}}"),
                )
                .into());
            }
        }
        Placement::Query { name } if name.trim().is_empty() => {
            return Err(FieldError::new("placement.name", "(the query parameter) is empty").into());
        }
        _ => {}
    }
    match (auth_type, &input.oauth) {
        (AuthType::Oauth2, None) => {
            return Err(FieldError::quoted(
                "oauth",
                "settings are needed by an oauth2 service (client_id, token_url, ...)",
            )
            .into());
        }
        (AuthType::Oauth2, Some(oauth)) => oauth.validate()?,
        (other, Some(_)) => {
            return Err(FieldError::quoted(
                "oauth",
                format!("settings are for oauth2 services, not {}", other.as_str()),
            )
            .into());
        }
        (_, None) => {}
    }
    if input.client_secret.is_some() && auth_type != AuthType::Oauth2 {
        return Err(FieldError::quoted(
            "client_secret",
            "is for oauth2 services; a connection's own secret goes in its credentials",
        )
        .into());
    }
    if input.client_secret.as_deref() == Some("") {
        return Err(FieldError::quoted("client_secret", "is empty").into());
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
) -> Result<(), AppError> {
    let needs = service
        .oauth
        .as_ref()
        .is_some_and(OAuthSettings::needs_client_secret);
    if needs && secret.is_none() && !stored {
        return Err(FieldError::quoted(
            "client_secret",
            format!(
                "is needed: service `{}` is a confidential client (client_credentials, HTTP Basic client auth, or no PKCE)",
                service.name
            ),
        )
        .into());
    }
    Ok(())
}

/// A catalog entry turned into a full definition, with the client id and
/// secret (and optionally the name and base URL) from `input`.
fn from_catalog(id: &str, input: ServiceInput) -> Result<ServiceInput, AppError> {
    let entry = catalog::entry(id).map_err(|e| match e {
        catalog::CatalogError::Unknown(_) => AppError::NotFound(e.to_string()),
        catalog::CatalogError::Invalid(_) => AppError::Catalog(e),
    })?;
    if input.oauth.is_some() || input.placement.is_some() || input.auth_type.is_some() {
        return Err(AppError::Invalid(format!(
            "catalog entry `{id}` brings its own auth type, placement and OAuth settings; give only name, base_url, client_id and client_secret"
        )));
    }
    let client_id = match (entry.auth_type, input.client_id.as_deref()) {
        (AuthType::Oauth2, None) | (AuthType::Oauth2, Some("")) => {
            return Err(FieldError::quoted(
                "client_id",
                format!(
                    "is needed to configure `{id}`: the client id (and usually the client secret) of your app registered with {}; see {}",
                    entry.display_name, entry.docs
                ),
            )
            .into());
        }
        (AuthType::Oauth2, Some(client_id)) => client_id.to_owned(),
        (_, Some(_)) => {
            return Err(FieldError::quoted(
                "client_id",
                format!(
                    "is not used: `{id}` uses {} credentials, set on each connection",
                    entry.auth_type.as_str()
                ),
            )
            .into());
        }
        (_, None) => String::new(),
    };
    let name = input.name.clone().unwrap_or_else(|| entry.id.clone());
    let template = entry
        .to_service(&name, &client_id)
        .map_err(AppError::Catalog)?;
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

/// Every service: configured ones first, then catalog entries not configured yet.
pub async fn list(store: &Store) -> Result<Vec<ServiceListing>, AppError> {
    let stored = store.services().await?;
    let entries = catalog::entries().map_err(AppError::Catalog)?;
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
            service: entry.to_service(&entry.id, "").map_err(AppError::Catalog)?,
            source: "catalog".to_owned(),
            configured: false,
            display_name: Some(entry.display_name.clone()),
            category: Some(entry.category.clone()),
            docs: Some(entry.docs.clone()),
        });
    }
    Ok(listing)
}

/// Creates a service, from a full definition or a catalog entry; an
/// `oauth.issuer` is discovered first.
pub async fn create(
    store: &Store,
    oauth: &OAuth,
    input: ServiceInput,
) -> Result<Service, AppError> {
    let mut input = match input.catalog.clone() {
        Some(id) => from_catalog(&id, input)?,
        None => input,
    };
    let name = input
        .name
        .clone()
        .ok_or_else(|| FieldError::quoted("name", "is required: the service needs a name"))?;
    if let Some(settings) = input.oauth.as_mut() {
        oauth
            .discover(settings)
            .await
            .map_err(|e| FieldError::new("oauth.issuer", format!("cannot be used: {e}")))?;
    }
    let secret = input.client_secret.clone().map(Secret::new);
    let service = build_service(name, input, now_ms())?;
    require_secret(&service, secret.as_ref(), false)?;
    store.create_service(&service, secret.as_ref()).await?;
    store
        .service(&service.name)
        .await?
        .ok_or(AppError::NotKept("service"))
}

/// The service called `name`.
pub async fn get(store: &Store, name: &str) -> Result<Service, AppError> {
    store
        .service(name)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no service named `{name}`")))
}

/// Replaces the definition of service `name`; it is never renamed and
/// keeps its auth type, and an absent client secret keeps the stored one.
pub async fn update(store: &Store, name: &str, input: ServiceInput) -> Result<Service, AppError> {
    if let Some(body_name) = &input.name
        && body_name != name
    {
        return Err(AppError::Conflict(format!(
            "a service cannot be renamed (`{name}` in the path, `{body_name}` in the body)"
        )));
    }
    let existing = get(store, name).await?;
    if input.auth_type.is_some_and(|t| t != existing.auth_type) {
        return Err(FieldError::quoted(
            "auth_type",
            format!(
                "cannot change: service `{name}` uses {}; its connections' credentials would no longer fit {}",
                existing.auth_type.as_str(),
                input.auth_type.map(AuthType::as_str).unwrap_or_default()
            ),
        )
        .into());
    }
    let secret = input.client_secret.clone().map(Secret::new);
    let service = build_service(name.to_owned(), input, existing.created_at_ms)?;
    require_secret(&service, secret.as_ref(), existing.has_client_secret)?;
    store.update_service(&service, secret.as_ref()).await?;
    store
        .service(&service.name)
        .await?
        .ok_or(AppError::NotKept("service"))
}

/// Deletes a service no connection uses.
pub async fn delete(store: &Store, name: &str) -> Result<(), AppError> {
    Ok(store.delete_service(name).await?)
}
