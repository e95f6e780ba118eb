//! The host's persistent state behind traits, one per area: services,
//! connections, each plugin's key-value namespace, plugins and artifacts,
//! the journal of events, deliveries and executions with the triggers
//! beside it, sessions (pending OAuth authorizations) and metadata. Each
//! area's module holds its types and its trait; [`backend::Backend`] is all
//! of them together, implemented by [`redb`] (embedded, the default) and
//! [`postgres`] (shared by several hosts), both checked by
//! [`conformance`]. [`Store`] sits above any backend: it alone holds the
//! master key ([`crypto`], [`keys`]), so backends see only ciphertext. A
//! store URL ([`url`]) says which backend to open.

pub mod api_keys;
pub mod backend;
pub mod cluster;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod connect_links;
pub mod connections;
pub mod crypto;
pub mod encoded;
pub mod journal;
pub mod keys;
pub mod kv;
pub mod meta;
pub mod plugins;
pub mod postgres;
pub mod redb;
mod sealing;
pub mod services;
pub mod sessions;
pub mod snapshot;
pub mod url;

pub use api_keys::ApiKey;
pub use backend::Backend;
pub use cluster::{Change, Changes, Cluster, RateAnswer};
pub use connect_links::{ConnectLink, ConnectLinkRows};
pub use connections::{ConnectionChange, ConnectionLock};
pub use crypto::Cipher;
pub use encoded::Encoded;
pub use journal::{
    Delivery, DeliveryChange, DeliveryQuery, DeliveryState, EventRecord, ExecutionQuery,
    HistoryBudget, JournalAnswer, JournalEntry, NewEvent, apply_change,
};
pub use junction_core::Secret;
pub use junction_core::kv::{
    KvOutcome, KvQuota, KvUsage, KvWrite, MAX_KV_KEY, MAX_KV_VALUE, validate_kv,
};
pub use junction_core::model::{
    AuthType, Connection, ConnectionKey, ConnectionStatus, Credentials, Placement, Service,
    StateChange, validate_end_user, validate_link_name, validate_service_name,
};
pub use junction_core::now_ms;
pub use junction_core::validate_plugin_name;
pub use plugins::{NewVersion, PluginRecord, PluginVersion};
pub use redb::DB_FILE;
pub use sealing::Store;
pub use sessions::{
    ConsoleFlash, ConsoleSession, PendingAuthorization, PendingTarget, STATE_TTL_MS,
};
pub use snapshot::{Reads, Snapshot};
pub use url::{StoreUrl, StoreUrlError};

/// The schema this build writes; older data is migrated on open.
pub const SCHEMA_VERSION: u32 = 7;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] ::redb::Error),
    #[error("PostgreSQL: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot reach {at}: {source}")]
    Unreachable {
        at: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error("cannot set up the PostgreSQL connection pool: {0}")]
    PoolSetup(#[source] deadpool_postgres::BuildError),
    #[error("the data directory {path} is in use by another process (a running `junction serve`?)")]
    InUse { path: String },
    #[error("encryption: {0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("stored record `{0}` is corrupt: {1}")]
    Corrupt(String, String),
    #[error(
        "the store was written by a newer Junction (schema {found}, this build knows {known}); run that version, or a newer one"
    )]
    NewerSchema { found: u32, known: u32 },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the master key is missing: {path} does not exist, but this data directory holds secrets sealed with key {key_id}; restore the key file or set JUNCTION_MASTER_KEY to that key. Starting with a new key would leave every secret unreadable"
    )]
    MissingKey { path: String, key_id: String },
    #[error(
        "the master key is not the one that sealed this data directory: its secrets were sealed with key {sealed_with}, the configured key is {configured}; give the right key (JUNCTION_MASTER_KEY or master.key), or set JUNCTION_PREVIOUS_MASTER_KEY to the old one to rotate"
    )]
    WrongKey {
        sealed_with: String,
        configured: String,
    },
    #[error("service `{service}` is used by connections {}; delete them first", connections.join(", "))]
    ServiceInUse {
        service: String,
        connections: Vec<String>,
    },
    #[error("a storage task stopped before it finished: {0}")]
    Worker(#[from] tokio::task::JoinError),
    #[error("{kind} `{name}` already exists")]
    Exists { kind: &'static str, name: String },
    #[error("no {kind} named `{name}`")]
    NotFound { kind: &'static str, name: String },
}

/// What the server said, when it said something, beside the driver's own
/// words ("db error" alone names nothing).
fn postgres_detail(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{err}: {} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

/// Creates `path` (and its parents) private to the owner: the data
/// directory holds the key file and the admin token.
pub(crate) fn create_private_dir(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StoreError::DataDir {
            path: path.display().to_string(),
            source,
        })
}
