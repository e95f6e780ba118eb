//! Connections, as a backend holds them: every credential field sealed
//! (`Connection<String>`). Opening them is [`crate::Store`]'s work.

use async_trait::async_trait;

use crate::StoreError;
use junction_core::model::{Connection, ConnectionStatus};

/// A connection's status changed (sent after the change is committed).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionChange {
    /// Its link name.
    pub link_name: String,
    /// The end user it belongs to, absent for an organisation-wide one.
    pub end_user: Option<String>,
    /// Its service.
    pub service: String,
    /// The status now.
    pub status: ConnectionStatus,
    /// The status before, absent for a new connection.
    pub previous: Option<ConnectionStatus>,
    /// Why, in words (the newest history entry, or the last error).
    pub reason: Option<String>,
}

/// The one text that names a connection inside a backend (a redb key, an
/// advisory lock's name): the link name for an organisation-wide one,
/// `end user` + U+001F + `link` for an end user's. Neither part can hold
/// U+001F (an end user id has no control characters, a link name is
/// `a-z 0-9 _`), so no two connections share it, and an end user's
/// connections sit together, after the prefix [`end_user_prefix`].
pub(crate) fn row_key(end_user: Option<&str>, link: &str) -> String {
    match end_user {
        None => link.to_owned(),
        Some(user) => format!("{}{link}", end_user_prefix(user)),
    }
}

/// How listings order connections, on either backend: the organisation's
/// first, then by end user, each by link name.
pub(crate) fn listing_order(a: &Connection<String>, b: &Connection<String>) -> std::cmp::Ordering {
    (a.end_user.as_deref().unwrap_or(""), a.link_name.as_str())
        .cmp(&(b.end_user.as_deref().unwrap_or(""), b.link_name.as_str()))
}

/// A connection's name inside a [`crate::StoreError`] message, which puts
/// it between backticks: `mailchimp`, or `mailchimp` of end user `u1`.
pub(crate) fn error_name(end_user: Option<&str>, link: &str) -> String {
    match end_user {
        None => link.to_owned(),
        Some(user) => format!("{link}` of end user `{user}"),
    }
}

/// The start of every [`row_key`] of `end_user`'s connections.
pub(crate) fn end_user_prefix(end_user: &str) -> String {
    format!("{end_user}\u{1f}")
}

/// A connection's refresh lock, held: across every host on the store,
/// one holder at a time. [`ConnectionLock::release`] lets it go; a lock
/// dropped without it is let go too, never kept by a pooled connection.
#[async_trait]
pub trait ConnectionLock: Send + Sync {
    /// Lets the lock go.
    async fn release(self: Box<Self>);
}

/// Connections with sealed credentials.
#[async_trait]
pub trait ConnectionRows: Send + Sync {
    /// Waits for, and takes, the refresh lock of `link` (it need not
    /// exist): whoever refreshes a connection's tokens holds it from
    /// before re-reading them until the new ones are stored, so a refresh
    /// token is never redeemed twice, however many hosts share the store.
    async fn lock_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Box<dyn ConnectionLock>, StoreError>;
    /// Adds a new connection; its service must exist and its link name be
    /// free (for its end user, or among organisation-wide ones).
    async fn create_connection(&self, row: &Connection<String>) -> Result<(), StoreError>;
    /// Replaces an existing connection; returns the status it had.
    async fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError>;
    /// The connection with this link name, of `end_user` or (for `None`)
    /// the organisation's.
    async fn connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection<String>>, StoreError>;
    /// Every connection: the organisation's by link name, then each end
    /// user's, by end user and link name.
    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError>;
    /// `end_user`'s connections, by link name.
    async fn end_user_connections(
        &self,
        end_user: &str,
    ) -> Result<Vec<Connection<String>>, StoreError>;
    /// Removes a connection.
    async fn delete_connection(&self, end_user: Option<&str>, link: &str)
    -> Result<(), StoreError>;
}
