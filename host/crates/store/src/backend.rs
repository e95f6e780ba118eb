//! What a storage backend is: every area's rows behind one object. A
//! backend implements these traits over its own database and passes
//! the conformance suite (`conformance.rs`); nothing else changes. It only ever
//! holds sealed secrets: sealing and opening are [`crate::Store`]'s.

use crate::api_keys::ApiKeyRows;
use crate::cluster::Cluster;
use crate::connect_links::ConnectLinkRows;
use crate::connections::ConnectionRows;
use crate::journal::{JournalRows, TriggerRows};
use crate::kv::KvRows;
use crate::meta::{MetaRows, SealedRows};
use crate::plugins::PluginRows;
use crate::services::ServiceRows;
use crate::sessions::{ConsoleRows, SessionRows};
use crate::snapshot::SnapshotRows;

/// Every area of storage.
pub trait Backend:
    MetaRows
    + SealedRows
    + ServiceRows
    + ConnectionRows
    + KvRows
    + PluginRows
    + JournalRows
    + TriggerRows
    + SessionRows
    + ConsoleRows
    + ApiKeyRows
    + ConnectLinkRows
    + SnapshotRows
{
    /// What and where it is, for logs and errors (no credentials).
    fn describe(&self) -> String;
    /// What several hosts sharing this backend coordinate through; `None`
    /// for a backend only one host can open.
    fn cluster(&self) -> Option<&dyn Cluster>;
}
