//! The records the store keeps: services, connections and their credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::now_ms;
use crate::secret::Secret;

/// How a connection proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    /// OAuth 2.0 access (and refresh) tokens.
    Oauth2,
    /// A static API key.
    ApiKey,
    /// HTTP Basic user name and password.
    Basic,
    /// A static bearer token.
    Bearer,
}

impl AuthType {
    /// The name used in the WIT `connection` record and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Oauth2 => "oauth2",
            AuthType::ApiKey => "api-key",
            AuthType::Basic => "basic",
            AuthType::Bearer => "bearer",
        }
    }
}

impl std::str::FromStr for AuthType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "oauth2" => Ok(AuthType::Oauth2),
            "api-key" => Ok(AuthType::ApiKey),
            "basic" => Ok(AuthType::Basic),
            "bearer" => Ok(AuthType::Bearer),
            other => Err(format!(
                "unsupported auth type `{other}`; use oauth2, api-key, basic or bearer"
            )),
        }
    }
}

/// Where the host puts a connection's credential on an outbound request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "in", rename_all = "kebab-case")]
pub enum Placement {
    /// A header whose value is `template` with `{token}` replaced by the credential.
    Header { name: String, template: String },
    /// A query parameter holding the credential.
    Query { name: String },
    /// HTTP Basic: the connection's user name (or `username` here) and the
    /// credential as the password.
    Basic { username: Option<String> },
}

impl Placement {
    /// `Authorization: Bearer {token}`.
    pub fn bearer() -> Self {
        Placement::Header {
            name: "Authorization".into(),
            template: "Bearer {token}".into(),
        }
    }
}

/// A third-party API: how to reach it and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    /// Unique name, e.g. `mailchimp`.
    pub name: String,
    /// How connections of this service authenticate.
    pub auth_type: AuthType,
    /// API base URL; `{key}` is replaced by the connection's metadata value,
    /// e.g. `https://{dc}.api.mailchimp.com/3.0`.
    pub base_url: Option<String>,
    /// Extra origins (`https://host[:port]`, `*.` wildcards) credentials may be
    /// sent to, beyond the base URL's.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How credentials are attached.
    pub placement: Placement,
    /// OAuth 2.0 settings, for `oauth2` services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<crate::oauth_settings::OAuthSettings>,
    /// Whether a client secret is stored (it is kept sealed, apart from this record).
    #[serde(default)]
    pub has_client_secret: bool,
    /// What is wrong with the definition, when a provider said so
    /// (`invalid_client`); cleared by the next successful token request.
    #[serde(default)]
    pub problem: Option<String>,
    /// When it was created.
    pub created_at_ms: u64,
}

/// Whether a connection can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionStatus {
    /// Authorised and usable.
    Connected,
    /// Not (or no longer) authorised.
    Disconnected,
    /// The provider rejected the grant; an admin must connect again.
    NeedsReauth,
    /// Something else is wrong; see `last_error`.
    Error,
}

/// The secret part of a connection. `S` is [`Secret`] in memory and a sealed
/// string at rest, so the two forms cannot be confused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Credentials<S> {
    /// Nothing stored yet (e.g. an OAuth connection not authorised).
    None,
    /// A static API key.
    ApiKey { key: S },
    /// HTTP Basic.
    Basic { username: String, password: S },
    /// A static bearer token.
    Bearer { token: S },
    /// OAuth 2.0 tokens.
    Oauth2 {
        access_token: S,
        refresh_token: Option<S>,
        token_type: Option<String>,
        expires_at_ms: Option<u64>,
    },
}

impl<S> Credentials<S> {
    /// Converts every secret field with `f(field_name, value)`.
    pub fn try_map<T, E>(
        self,
        mut f: impl FnMut(&str, S) -> Result<T, E>,
    ) -> Result<Credentials<T>, E> {
        Ok(match self {
            Credentials::None => Credentials::None,
            Credentials::ApiKey { key } => Credentials::ApiKey {
                key: f("key", key)?,
            },
            Credentials::Basic { username, password } => Credentials::Basic {
                username,
                password: f("password", password)?,
            },
            Credentials::Bearer { token } => Credentials::Bearer {
                token: f("token", token)?,
            },
            Credentials::Oauth2 {
                access_token,
                refresh_token,
                token_type,
                expires_at_ms,
            } => Credentials::Oauth2 {
                access_token: f("access_token", access_token)?,
                refresh_token: refresh_token.map(|t| f("refresh_token", t)).transpose()?,
                token_type,
                expires_at_ms,
            },
        })
    }

    /// Whether any secret is stored.
    pub fn has_secret(&self) -> bool {
        !matches!(self, Credentials::None)
    }
}

/// A named, authorised account of a service, referenced by its link name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection<S = Secret> {
    /// Fixed once created, e.g. `mailchimp`.
    pub link_name: String,
    /// The embedding app's end user it belongs to; absent for the
    /// organisation's own. Link name and end user identify it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// The service's name.
    pub service: String,
    /// Whether it can be used.
    pub status: ConnectionStatus,
    /// Scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Non-secret values captured at connect time (`dc`, `api_domain`, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The secrets.
    pub credentials: Credentials<S>,
    /// The last failure, for the admin.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at_ms: u64,
    /// When it last changed.
    pub updated_at_ms: u64,
    /// When tokens were last obtained (connect or refresh), for OAuth.
    #[serde(default)]
    pub last_refresh_ms: Option<u64>,
    /// The latest state changes and failures, oldest first.
    #[serde(default)]
    pub history: Vec<StateChange>,
}

impl<S> Connection<S> {
    /// The same connection holding `credentials` instead: how the store
    /// swaps opened secrets for sealed ones and back.
    pub fn with_credentials<T>(self, credentials: Credentials<T>) -> Connection<T> {
        Connection {
            link_name: self.link_name,
            end_user: self.end_user,
            service: self.service,
            status: self.status,
            scopes: self.scopes,
            metadata: self.metadata,
            credentials,
            last_error: self.last_error,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            last_refresh_ms: self.last_refresh_ms,
            history: self.history,
        }
    }
}

/// Most history entries kept per connection.
pub const HISTORY_LEN: usize = 20;

/// A connection's state change or failure, with when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateChange {
    /// When.
    pub at_ms: u64,
    /// The status after it.
    pub status: ConnectionStatus,
    /// Why, in words.
    pub reason: String,
}

impl<S> Connection<S> {
    /// Sets the status and records the change (or failure) with its reason.
    pub fn record(&mut self, status: ConnectionStatus, reason: impl Into<String>) {
        let now = now_ms();
        self.status = status;
        self.updated_at_ms = now;
        self.history.push(StateChange {
            at_ms: now,
            status,
            reason: reason.into(),
        });
        if self.history.len() > HISTORY_LEN {
            let excess = self.history.len() - HISTORY_LEN;
            self.history.drain(..excess);
        }
    }
}

/// Checks a link name against Zoho's rules: a lower-case letter first, then
/// lower-case letters, digits and `_`, at most 50 characters.
pub fn validate_link_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.len() > 50 {
        return Err(format!(
            "link name `{name}` is invalid: start with a lower-case letter, then use a-z, 0-9 and _, at most 50 characters"
        ));
    }
    Ok(())
}

/// Most characters in an end user's id.
pub const END_USER_MAX_CHARS: usize = 128;

/// Checks an end user's id: the embedding app's own opaque id (a user id,
/// an email, `auth0|123`), 1 to 128 characters, none of them a control
/// character or whitespace.
pub fn validate_end_user(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("end user id is empty".into());
    }
    if id.chars().count() > END_USER_MAX_CHARS {
        return Err(format!(
            "end user id is longer than {END_USER_MAX_CHARS} characters"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("end user id holds a control character".into());
    }
    if id.chars().any(char::is_whitespace) {
        return Err("end user id holds whitespace".into());
    }
    Ok(())
}

/// How a connection is named in messages: `mailchimp`, or `mailchimp` of
/// end user `u1`.
pub fn describe_connection(end_user: Option<&str>, link: &str) -> String {
    match end_user {
        None => format!("`{link}`"),
        Some(user) => format!("`{link}` of end user `{user}`"),
    }
}

/// What names one connection: its link name, and the end user it belongs
/// to (none for the organisation's own). Shown as [`describe_connection`]
/// does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionKey {
    /// The end user, absent for an organisation-wide connection.
    pub end_user: Option<String>,
    /// The link name.
    pub link: String,
}

impl ConnectionKey {
    /// The key of `end_user`'s (or the organisation's) `link`.
    pub fn new(end_user: Option<&str>, link: &str) -> Self {
        ConnectionKey {
            end_user: end_user.map(str::to_owned),
            link: link.to_owned(),
        }
    }

    /// The organisation's `link`.
    pub fn org(link: &str) -> Self {
        Self::new(None, link)
    }

    /// The key of `connection`.
    pub fn of<S>(connection: &Connection<S>) -> Self {
        Self::new(connection.end_user.as_deref(), &connection.link_name)
    }

    /// The end user, as a borrowed option.
    pub fn end_user(&self) -> Option<&str> {
        self.end_user.as_deref()
    }
}

impl std::fmt::Display for ConnectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_connection(self.end_user(), &self.link))
    }
}

/// Checks a service name: a lower-case letter first, then a-z, 0-9, `_` and `-`,
/// at most 63 characters.
pub fn validate_service_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > 63 {
        return Err(format!(
            "service name `{name}` is invalid: start with a lower-case letter, then use a-z, 0-9, _ and -, at most 63 characters"
        ));
    }
    Ok(())
}

/// Checks a plugin name: lower-case letters, digits and `-`, a letter first,
/// no `-` at the end, at most 63 characters.
pub fn validate_plugin_name(name: &str) -> Result<(), String> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !chars_ok || name.ends_with('-') || name.len() > 63 {
        return Err(format!(
            "plugin name `{name}` is invalid: start with a lower-case letter, then use a-z, 0-9 and -, not ending in -, at most 63 characters"
        ));
    }
    Ok(())
}

/// What a token keeper did before a request: whether the token changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Not an OAuth connection, or its token is good for longer than the margin.
    Unchanged,
    /// The token was refreshed (here, or by a concurrent caller).
    Refreshed,
}
