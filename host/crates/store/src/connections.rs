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

/// Connections with sealed credentials.
#[async_trait]
pub trait ConnectionRows: Send + Sync {
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
