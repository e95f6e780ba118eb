//! Connections: named accounts of services. Static credentials (api-key,
//! basic, bearer) are given at creation; an oauth2 connection starts
//! disconnected and is authorised through the OAuth flow. Secrets are
//! write-only: a [`ConnectionView`] says at most `has_secret: true`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use junction_core::FieldError;
use junction_store::{
    AuthType, Connection, ConnectionStatus, Credentials, Secret, Store, StoreError, now_ms,
    validate_link_name,
};

/// The secret part of a new connection.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CredentialsInput {
    /// A static API key.
    ApiKey { key: String },
    /// HTTP Basic user name and password.
    Basic { username: String, password: String },
    /// A static bearer token.
    Bearer { token: String },
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput(***)")
    }
}

/// A new connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// The link name plugins use: a lower-case letter, then a-z, 0-9, `_`; at most 50. It never changes.
    pub link_name: String,
    /// The service it belongs to.
    pub service: String,
    /// Its credentials, matching the service's auth type. Absent for an
    /// oauth2 service: the connection starts disconnected and is authorised
    /// with `POST /v1/connections/{link}/authorize`.
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
    /// Non-secret values for the base URL template (`dc`, `api_domain`, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Scopes, for the record.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A connection as the API shows it: never a secret.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// The link name.
    pub link_name: String,
    /// The service.
    pub service: String,
    /// The service's auth type.
    pub auth_type: Option<AuthType>,
    /// Whether it can be used.
    pub status: ConnectionStatus,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Non-secret metadata.
    pub metadata: BTreeMap<String, String>,
    /// Whether credentials are stored.
    pub has_secret: bool,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the OAuth access token expires, if known.
    pub expires_at_ms: Option<u64>,
    /// When tokens were last obtained (connect or refresh).
    pub last_refresh_ms: Option<u64>,
    /// The latest state changes and failures, oldest first.
    pub history: Vec<junction_store::StateChange>,
    /// When it was created.
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
    /// Plugins whose active version is granted this connection.
    pub used_by: Vec<String>,
}

/// The view of `connection`: its service's auth type and the plugins that use it.
pub async fn view<S>(
    store: &Store,
    connection: &Connection<S>,
) -> Result<ConnectionView, StoreError> {
    let auth_type = store
        .service(&connection.service)
        .await?
        .map(|s| s.auth_type);
    let used_by = store
        .plugins()
        .await?
        .into_iter()
        .filter(|p| {
            p.active()
                .is_some_and(|v| v.granted_connections.contains(&connection.link_name))
        })
        .map(|p| p.name)
        .collect();
    Ok(ConnectionView {
        link_name: connection.link_name.clone(),
        service: connection.service.clone(),
        auth_type,
        status: connection.status,
        scopes: connection.scopes.clone(),
        metadata: connection.metadata.clone(),
        has_secret: connection.credentials.has_secret(),
        last_error: connection.last_error.clone(),
        last_refresh_ms: connection.last_refresh_ms,
        history: connection.history.clone(),
        expires_at_ms: match &connection.credentials {
            Credentials::Oauth2 { expires_at_ms, .. } => *expires_at_ms,
            _ => None,
        },
        created_at_ms: connection.created_at_ms,
        updated_at_ms: connection.updated_at_ms,
        used_by,
    })
}

/// Every connection.
pub async fn list(store: &Store) -> Result<Vec<ConnectionView>, AppError> {
    let mut views = Vec::new();
    for connection in store.sealed_connections().await? {
        views.push(view(store, &connection).await?);
    }
    Ok(views)
}

/// Creates a connection; with credentials it is connected at once.
pub async fn create(store: &Store, input: CreateConnection) -> Result<ConnectionView, AppError> {
    validate_link_name(&input.link_name).map_err(AppError::Invalid)?;
    for scope in &input.scopes {
        junction_oauth::settings::check_scope(scope)
            .map_err(|problem| FieldError::new("scopes", problem))?;
    }
    let credentials = match input.credentials {
        None => Credentials::None,
        Some(CredentialsInput::ApiKey { key }) => Credentials::ApiKey {
            key: non_empty(key, "credentials.key")?,
        },
        Some(CredentialsInput::Basic { username, password }) => Credentials::Basic {
            username,
            password: non_empty(password, "credentials.password")?,
        },
        Some(CredentialsInput::Bearer { token }) => Credentials::Bearer {
            token: non_empty(token, "credentials.token")?,
        },
    };
    let status = if credentials.has_secret() {
        ConnectionStatus::Connected
    } else {
        ConnectionStatus::Disconnected
    };
    let now = now_ms();
    let connection = Connection {
        link_name: input.link_name,
        service: input.service,
        status,
        scopes: input.scopes,
        metadata: input.metadata,
        credentials,
        last_error: None,
        created_at_ms: now,
        updated_at_ms: now,
        last_refresh_ms: None,
        history: Vec::new(),
    };
    store.create_connection(&connection).await?;
    let created = view(store, &connection).await?;
    tracing::info!(link = %created.link_name, service = %created.service, "connection created");
    Ok(created)
}

fn non_empty(value: String, field: &'static str) -> Result<Secret, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    Ok(Secret::new(value))
}

/// The connection with link name `link`, its secrets never opened.
pub async fn get(store: &Store, link: &str) -> Result<ConnectionView, AppError> {
    match store.sealed_connection(link).await? {
        Some(connection) => Ok(view(store, &connection).await?),
        None => Err(AppError::NotFound(format!(
            "no connection with link name `{link}`"
        ))),
    }
}

/// Deletes a connection and its stored credentials.
pub async fn delete(store: &Store, link: &str) -> Result<(), AppError> {
    Ok(store.delete_connection(link).await?)
}
