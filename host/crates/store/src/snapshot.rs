//! Several areas read together: a page that shows figures from
//! connections, plugins, executions and deliveries asks once and gets one
//! consistent view in one round trip to the backend, instead of one hop per
//! area whose answers may disagree with each other.

use async_trait::async_trait;

use crate::StoreError;
use crate::journal::{Delivery, DeliveryQuery, ExecutionQuery};
use crate::plugins::PluginRecord;
use junction_core::ExecutionRecord;
use junction_core::model::Connection;

/// What to read; areas not asked for come back empty.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// Every connection (secrets sealed).
    pub connections: bool,
    /// Every plugin.
    pub plugins: bool,
    /// The executions matching this query.
    pub executions: Option<ExecutionQuery>,
    /// The deliveries matching this query.
    pub deliveries: Option<DeliveryQuery>,
}

/// The answer to [`Reads`], every part as of the same moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every connection, when asked for; credentials still sealed.
    pub connections: Vec<Connection<String>>,
    /// Every plugin, when asked for.
    pub plugins: Vec<PluginRecord>,
    /// The executions asked for, newest first.
    pub executions: Vec<ExecutionRecord>,
    /// The deliveries asked for, in the order [`crate::journal::JournalRows::deliveries`] gives.
    pub deliveries: Vec<Delivery>,
}

/// Reads across areas in one view.
#[async_trait]
pub trait SnapshotRows: Send + Sync {
    /// Answers each part of `reads` exactly as the area's own method would,
    /// all from one view of the data.
    async fn snapshot(&self, reads: &Reads) -> Result<Snapshot, StoreError>;
}
