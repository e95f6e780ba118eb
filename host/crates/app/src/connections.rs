//! Connections: named accounts of services, the organisation's or an end
//! user's (the embedding app's user, by its own id). Static credentials
//! (api-key, basic, bearer) are given at creation; an oauth2 connection
//! starts disconnected and is authorised through the OAuth flow. Secrets
//! are write-only: a [`ConnectionView`] says at most `has_secret: true`.
//! Deleting an end user revokes and removes every connection they have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use junction_core::FieldError;
use junction_oauth::TokenKeeper;
use junction_store::{
    AuthType, Connection, ConnectionKey, ConnectionStatus, Credentials, Secret, Store, StoreError,
    now_ms, validate_end_user, validate_link_name,
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
    /// The end user it belongs to (the embedding app's own id, 1 to 128
    /// characters); absent for an organisation-wide connection.
    #[serde(default)]
    pub end_user: Option<String>,
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
    /// The end user it belongs to; absent for an organisation-wide one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
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
    /// Plugins whose active version may use it: granted it at deploy, or
    /// (for an end user's) asking for its link name.
    pub used_by: Vec<String>,
}

/// An end user, as the API lists them.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndUserView {
    /// The embedding app's id for them.
    pub id: String,
    /// How many connections they have.
    pub connections: usize,
}

/// What deleting an end user did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndUserDeleted {
    /// The end user.
    pub id: String,
    /// Connections removed.
    pub deleted: Vec<String>,
    /// OAuth connections whose tokens were revoked at the provider first.
    pub revoked: Vec<String>,
    /// What the providers did not confirm (the tokens are gone here anyway).
    pub problems: Vec<String>,
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
            p.active().is_some_and(|v| match connection.end_user {
                None => v.granted_connections.contains(&connection.link_name),
                Some(_) => v.manifest.connections.contains(&connection.link_name),
            })
        })
        .map(|p| p.name)
        .collect();
    Ok(ConnectionView {
        link_name: connection.link_name.clone(),
        end_user: connection.end_user.clone(),
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

/// Which connections a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Owner {
    /// The organisation's and every end user's.
    #[default]
    Everyone,
    /// The organisation's own.
    Organisation,
    /// One end user's.
    EndUser(String),
}

/// The connections `owner` picks out.
pub async fn list(store: &Store, owner: &Owner) -> Result<Vec<ConnectionView>, AppError> {
    let rows = match owner {
        Owner::Everyone => store.sealed_connections().await?,
        Owner::Organisation => store
            .sealed_connections()
            .await?
            .into_iter()
            .filter(|c| c.end_user.is_none())
            .collect(),
        Owner::EndUser(user) => {
            checked_end_user(user)?;
            store.sealed_end_user_connections(user).await?
        }
    };
    let mut views = Vec::with_capacity(rows.len());
    for connection in rows {
        views.push(view(store, &connection).await?);
    }
    Ok(views)
}

/// Every end user with a connection.
pub async fn end_users(store: &Store) -> Result<Vec<EndUserView>, AppError> {
    Ok(store
        .end_users()
        .await?
        .into_iter()
        .map(|(id, connections)| EndUserView { id, connections })
        .collect())
}

/// `user`, if it is a valid end user id; the error names the field.
pub fn checked_end_user(user: &str) -> Result<&str, FieldError> {
    validate_end_user(user).map_err(|problem| FieldError::new("end_user", problem))?;
    Ok(user)
}

/// Deletes every connection of end user `user`, revoking OAuth tokens at
/// the provider first (each under its refresh lock, so no refresh in
/// flight stores new ones after). A provider that does not confirm is
/// reported; the tokens are deleted here regardless.
pub async fn delete_end_user(
    store: &Store,
    tokens: &TokenKeeper,
    user: &str,
) -> Result<EndUserDeleted, AppError> {
    checked_end_user(user)?;
    let connections = store.sealed_end_user_connections(user).await?;
    if connections.is_empty() {
        return Err(AppError::NotFound(format!(
            "end user `{user}` has no connections"
        )));
    }
    let mut done = EndUserDeleted {
        id: user.to_owned(),
        deleted: Vec::new(),
        revoked: Vec::new(),
        problems: Vec::new(),
    };
    for connection in connections {
        let key = ConnectionKey::of(&connection);
        if matches!(connection.credentials, Credentials::Oauth2 { .. }) {
            match tokens.revoke(&key).await {
                Ok(()) => {
                    done.revoked.push(key.link.clone());
                    if let Some(problem) = store
                        .sealed_connection(key.end_user(), &key.link)
                        .await?
                        .and_then(|c| c.last_error)
                    {
                        done.problems.push(format!("{}: {problem}", key.link));
                    }
                }
                Err(err) => done.problems.push(format!("{}: {err}", key.link)),
            }
        }
        match store.delete_connection(key.end_user(), &key.link).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => done.deleted.push(key.link.clone()),
            Err(err) => return Err(err.into()),
        }
    }
    tracing::info!(
        end_user = %user,
        deleted = done.deleted.len(),
        revoked = done.revoked.len(),
        "end user deleted"
    );
    Ok(done)
}

/// Creates a connection; with credentials it is connected at once.
pub async fn create(store: &Store, input: CreateConnection) -> Result<ConnectionView, AppError> {
    validate_link_name(&input.link_name).map_err(AppError::Invalid)?;
    if let Some(user) = &input.end_user {
        checked_end_user(user)?;
    }
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
        end_user: input.end_user,
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
    tracing::info!(
        link = %created.link_name,
        end_user = created.end_user.as_deref().unwrap_or(""),
        service = %created.service,
        "connection created"
    );
    Ok(created)
}

fn non_empty(value: String, field: &'static str) -> Result<Secret, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    Ok(Secret::new(value))
}

/// The connection `key` names, its secrets never opened.
pub async fn get(store: &Store, key: &ConnectionKey) -> Result<ConnectionView, AppError> {
    match store.sealed_connection(key.end_user(), &key.link).await? {
        Some(connection) => Ok(view(store, &connection).await?),
        None => Err(AppError::NotFound(format!("no connection named {key}"))),
    }
}

/// Deletes a connection and its stored credentials.
pub async fn delete(store: &Store, key: &ConnectionKey) -> Result<(), AppError> {
    Ok(store.delete_connection(key.end_user(), &key.link).await?)
}
