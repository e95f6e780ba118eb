//! Lookup of the connections granted to this plugin. Never a secret.
//!
//! ```no_run
//! if let Some(crm) = junction_sdk::connections::get("zohocrm") {
//!     junction_sdk::info!("CRM API at {:?}", crm.base_url);
//! }
//! ```

use crate::bindings::junction::plugin::connections as wit;

/// Whether a connection can be used.
///
/// ```
/// assert_ne!(junction_sdk::connections::Status::Connected, junction_sdk::connections::Status::NeedsReauth);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Authorised and usable.
    Connected,
    /// Created but not (or no longer) authorised.
    Disconnected,
    /// The provider rejected the refresh token; an admin must connect it again.
    NeedsReauth,
    /// Something else is wrong; the admin console says what.
    Error,
}

/// A connection as a plugin sees it.
///
/// ```no_run
/// let all = junction_sdk::connections::all();
/// for connection in all {
///     junction_sdk::info!("{} ({})", connection.link_name, connection.service);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The link name, e.g. `mailchimp`.
    pub link_name: String,
    /// The service, e.g. `mailchimp`.
    pub service: String,
    /// `oauth2`, `api-key`, `basic` or `bearer`.
    pub auth_type: String,
    /// Whether it can be used now.
    pub status: Status,
    /// Scopes granted by the provider.
    pub scopes: Vec<String>,
    /// The API base URL relative request URLs are resolved against.
    pub base_url: Option<String>,
    /// Non-secret values captured at connect time (`api_domain`, `dc`, ...).
    pub metadata: Vec<(String, String)>,
}

impl Connection {
    /// A captured metadata value.
    ///
    /// ```no_run
    /// let dc = junction_sdk::connections::get("mailchimp").and_then(|c| c.metadata("dc").map(str::to_owned));
    /// ```
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl From<wit::Connection> for Connection {
    fn from(c: wit::Connection) -> Self {
        Connection {
            link_name: c.link_name,
            service: c.service,
            auth_type: c.auth_type,
            status: match c.status {
                wit::Status::Connected => Status::Connected,
                wit::Status::Disconnected => Status::Disconnected,
                wit::Status::NeedsReauth => Status::NeedsReauth,
                wit::Status::Error => Status::Error,
            },
            scopes: c.scopes,
            base_url: c.base_url,
            metadata: c.metadata,
        }
    }
}

/// The connection with this link name, if it exists and is granted to this plugin.
///
/// ```no_run
/// let connected = junction_sdk::connections::get("mailchimp")
///     .is_some_and(|c| c.status == junction_sdk::connections::Status::Connected);
/// ```
pub fn get(link_name: &str) -> Option<Connection> {
    wit::get(link_name).map(Connection::from)
}

/// Every connection granted to this plugin.
///
/// ```no_run
/// let names: Vec<String> = junction_sdk::connections::all().into_iter().map(|c| c.link_name).collect();
/// ```
pub fn all() -> Vec<Connection> {
    wit::all().into_iter().map(Connection::from).collect()
}
