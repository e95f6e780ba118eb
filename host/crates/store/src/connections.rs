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
    /// Its service.
    pub service: String,
    /// The status now.
    pub status: ConnectionStatus,
    /// The status before, absent for a new connection.
    pub previous: Option<ConnectionStatus>,
    /// Why, in words (the newest history entry, or the last error).
    pub reason: Option<String>,
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
    async fn lock_connection(&self, link: &str) -> Result<Box<dyn ConnectionLock>, StoreError>;
    /// Adds a new connection; its service must exist and its link name be
    /// free.
    async fn create_connection(&self, row: &Connection<String>) -> Result<(), StoreError>;
    /// Replaces an existing connection; returns the status it had.
    async fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError>;
    /// The connection with this link name.
    async fn connection(&self, link: &str) -> Result<Option<Connection<String>>, StoreError>;
    /// Every connection, by link name.
    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError>;
    /// Removes a connection.
    async fn delete_connection(&self, link: &str) -> Result<(), StoreError>;
}
