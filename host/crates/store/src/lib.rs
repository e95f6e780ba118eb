//! The host's persistent state in one redb file: services, connections (with
//! their secrets sealed by [`crypto`]), each plugin's private key-value
//! namespace, deployed plugins and their artifacts ([`plugins`]), execution
//! records ([`executions`]), events with their deliveries, the delivery
//! queue, API triggers, schedule marks and sealed webhook secrets
//! ([`events`]), the admin token's hash, and the schema version. Everything
//! persistent goes through here, so another backend can be added without
//! touching the runtime.

pub mod authorizations;
pub mod crypto;
pub mod encoded;
pub mod events;
pub mod executions;
pub mod keys;
pub mod kv;
pub mod plugins;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub use authorizations::{PendingAuthorization, STATE_TTL_MS};
pub use crypto::Cipher;
pub use encoded::Encoded;
pub use events::{
    Delivery, DeliveryChange, DeliveryQuery, DeliveryState, EventRecord, JournalAnswer,
    JournalEntry, NewEvent,
};
pub use executions::{ExecutionQuery, HistoryBudget};
pub use junction_core::Secret;
pub use junction_core::kv::{
    KvOutcome, KvQuota, KvUsage, KvWrite, MAX_KV_KEY, MAX_KV_VALUE, validate_kv,
};
pub use junction_core::model::{
    AuthType, Connection, ConnectionStatus, Credentials, Placement, Service, StateChange,
    validate_link_name, validate_service_name,
};
pub use junction_core::now_ms;
pub use junction_core::validate_plugin_name;
pub use plugins::{NewVersion, PluginRecord, PluginVersion};

/// The schema this build writes; older files are migrated on open.
pub const SCHEMA_VERSION: u32 = 3;
/// The redb file inside the data directory.
pub const DB_FILE: &str = "junction.redb";

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// Service name → its sealed OAuth client secret.
const SERVICE_SECRETS: TableDefinition<&str, &str> = TableDefinition::new("service_secrets");
const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");
const ADMIN_TOKEN_HASH: &str = "admin_token_sha256";

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("the data directory {path} is in use by another process (a running `junction serve`?)")]
    InUse { path: String },
    #[error("encryption: {0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("stored record `{0}` is corrupt: {1}")]
    Corrupt(String, String),
    #[error(
        "the data directory was written by a newer Junction (schema {0}, this build knows {SCHEMA_VERSION})"
    )]
    NewerSchema(u32),
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
    #[error("{kind} `{name}` already exists")]
    Exists { kind: &'static str, name: String },
    #[error("no {kind} named `{name}`")]
    NotFound { kind: &'static str, name: String },
}

fn db<E: Into<redb::Error>>(err: E) -> StoreError {
    StoreError::Db(err.into())
}

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

/// The open store.
pub struct Store {
    db: Database,
    /// Swapped by a key rotation; sealing takes the current one.
    cipher: std::sync::RwLock<std::sync::Arc<Cipher>>,
    key_source: keys::KeySource,
    /// One key rotation at a time.
    rotation: std::sync::Mutex<()>,
    data_dir: PathBuf,
    changes: tokio::sync::broadcast::Sender<ConnectionChange>,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, with the master
    /// key from the environment or the key file.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_keys(data_dir, keys::KeyConfig::from_env())
    }

    /// Opens the store with these keys (see [`keys`]).
    pub fn open_with_keys(data_dir: &Path, config: keys::KeyConfig) -> Result<Self, StoreError> {
        // Private to the owner: it holds the key file and the admin token.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        let db = Database::create(data_dir.join(DB_FILE)).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: data_dir.display().to_string(),
            },
            other => db(other),
        })?;
        let (cipher, key_source) = keys::load(data_dir, &db, config)?;
        let store = Store {
            db,
            cipher: std::sync::RwLock::new(std::sync::Arc::new(cipher)),
            key_source,
            rotation: std::sync::Mutex::new(()),
            data_dir: data_dir.to_owned(),
            changes: tokio::sync::broadcast::Sender::new(256),
        };
        store.migrate()?;
        store.settle_keys()?;
        Ok(store)
    }

    /// The keys sealing and opening secrets now.
    fn cipher(&self) -> std::sync::Arc<Cipher> {
        self.cipher
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn set_cipher(&self, cipher: Cipher) {
        *self
            .cipher
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = std::sync::Arc::new(cipher);
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Connection status changes as they are committed.
    pub fn connection_changes(&self) -> tokio::sync::broadcast::Receiver<ConnectionChange> {
        self.changes.subscribe()
    }

    fn announce(&self, connection: &Connection, previous: Option<ConnectionStatus>) {
        if previous == Some(connection.status) {
            return;
        }
        let reason = connection
            .history
            .last()
            .map(|h| h.reason.clone())
            .or_else(|| connection.last_error.clone());
        // Nobody listening (no server running) is fine.
        let _ = self.changes.send(ConnectionChange {
            link_name: connection.link_name.clone(),
            service: connection.service.clone(),
            status: connection.status,
            previous,
            reason,
        });
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut meta = txn.open_table(META).map_err(db)?;
            let found = match meta.get("schema_version").map_err(db)? {
                Some(v) => v.value().parse::<u32>().map_err(|e| {
                    StoreError::Corrupt("meta/schema_version".into(), e.to_string())
                })?,
                None => 0,
            };
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema(found));
            }
            // Version 0 is a new file; version 1 lacked the plugin and
            // execution tables, version 2 the event tables, which opening
            // creates. Nothing is rewritten.
            txn.open_table(SERVICES).map_err(db)?;
            txn.open_table(CONNECTIONS).map_err(db)?;
            txn.open_table(SERVICE_SECRETS).map_err(db)?;
            txn.open_table(authorizations::AUTHORIZATIONS).map_err(db)?;
            txn.open_table(kv::KV).map_err(db)?;
            txn.open_table(kv::KV_USAGE).map_err(db)?;
            txn.open_table(plugins::PLUGINS).map_err(db)?;
            txn.open_table(plugins::COMPONENTS).map_err(db)?;
            txn.open_table(plugins::ARTIFACTS).map_err(db)?;
            txn.open_table(executions::EXECUTIONS).map_err(db)?;
            txn.open_table(executions::EXECUTION_IDS).map_err(db)?;
            txn.open_table(executions::BY_PLUGIN).map_err(db)?;
            txn.open_table(executions::COUNTS).map_err(db)?;
            txn.open_table(executions::BYTES).map_err(db)?;
            txn.open_table(events::EVENTS).map_err(db)?;
            txn.open_table(events::EVENT_IDS).map_err(db)?;
            txn.open_table(events::IDEMPOTENCY).map_err(db)?;
            txn.open_table(events::DELIVERIES).map_err(db)?;
            txn.open_table(events::QUEUE).map_err(db)?;
            txn.open_table(events::DEAD).map_err(db)?;
            txn.open_table(events::TRIGGERS).map_err(db)?;
            txn.open_table(events::SCHEDULES).map_err(db)?;
            txn.open_table(events::HOOK_SECRETS).map_err(db)?;
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        let version = meta.get("schema_version").map_err(db)?;
        Ok(version.and_then(|v| v.value().parse().ok()).unwrap_or(0))
    }

    /// The sha256 (hex) of the admin token, once one was issued.
    pub fn admin_token_hash(&self) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        Ok(meta
            .get(ADMIN_TOKEN_HASH)
            .map_err(db)?
            .map(|v| v.value().to_owned()))
    }

    /// Records the sha256 (hex) of a new admin token; the old one stops working.
    pub fn set_admin_token_hash(&self, hash: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut meta = txn.open_table(META).map_err(db)?;
            meta.insert(ADMIN_TOKEN_HASH, hash).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    // ----- services -----

    /// Adds a new service, with its OAuth client secret if it has one.
    pub fn create_service(
        &self,
        service: &Service,
        client_secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        validate_service_name(&service.name).map_err(StoreError::Invalid)?;
        self.put_service(service, false, client_secret)
    }

    /// Writes `service` (it must already exist exactly when `replace` is
    /// set) and, when given, its client secret, sealed, in one transaction.
    fn put_service(
        &self,
        service: &Service,
        replace: bool,
        client_secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let name = service.name.clone();
        let sealed = client_secret
            .map(|secret| {
                self.cipher()
                    .seal(secret, &format!("services/{name}/client_secret"))
            })
            .transpose()?;
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(SERVICES).map_err(db)?;
            let mut secrets = txn.open_table(SERVICE_SECRETS).map_err(db)?;
            let exists = table.get(name.as_str()).map_err(db)?.is_some();
            match (exists, replace) {
                (true, false) => {
                    return Err(StoreError::Exists {
                        kind: "service",
                        name,
                    });
                }
                (false, true) => {
                    return Err(StoreError::NotFound {
                        kind: "service",
                        name,
                    });
                }
                _ => {}
            }
            if let Some(sealed) = &sealed {
                secrets.insert(name.as_str(), sealed.as_str()).map_err(db)?;
            }
            let mut row = service.clone();
            row.has_client_secret = secrets.get(name.as_str()).map_err(db)?.is_some();
            let bytes = serde_json::to_vec(&row)
                .map_err(|e| StoreError::Corrupt(name.clone(), e.to_string()))?;
            table.insert(name.as_str(), bytes.as_slice()).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// The OAuth client secret of `service`, opened.
    pub fn client_secret(&self, service: &str) -> Result<Option<Secret>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICE_SECRETS).map_err(db)?;
        let Some(sealed) = table.get(service).map_err(db)? else {
            return Ok(None);
        };
        Ok(Some(self.cipher().open(
            sealed.value(),
            &format!("services/{service}/client_secret"),
        )?))
    }

    /// The service with this name.
    pub fn service(&self, name: &str) -> Result<Option<Service>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICES).map_err(db)?;
        let Some(bytes) = table.get(name).map_err(db)? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("services/{name}"), e.to_string()))
    }

    /// Every service, by name.
    pub fn services(&self) -> Result<Vec<Service>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICES).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (name, bytes) = row.map_err(db)?;
            out.push(serde_json::from_slice(bytes.value()).map_err(|e| {
                StoreError::Corrupt(format!("services/{}", name.value()), e.to_string())
            })?);
        }
        Ok(out)
    }

    /// Replaces an existing service's definition (its name stays); a new
    /// client secret replaces the stored one, `None` keeps it.
    pub fn update_service(
        &self,
        service: &Service,
        client_secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        self.put_service(service, true, client_secret)
    }

    /// Removes a service no connection uses.
    pub fn delete_service(&self, name: &str) -> Result<(), StoreError> {
        let users: Vec<String> = self
            .sealed_connections()?
            .into_iter()
            .filter(|c| c.service == name)
            .map(|c| c.link_name)
            .collect();
        if !users.is_empty() {
            return Err(StoreError::Invalid(format!(
                "service `{name}` is used by connections {}; delete them first",
                users.join(", ")
            )));
        }
        let txn = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut table = txn.open_table(SERVICES).map_err(db)?;
            txn.open_table(SERVICE_SECRETS)
                .map_err(db)?
                .remove(name)
                .map_err(db)?;
            table.remove(name).map_err(db)?.is_some()
        };
        txn.commit().map_err(db)?;
        if !removed {
            return Err(StoreError::NotFound {
                kind: "service",
                name: name.into(),
            });
        }
        Ok(())
    }

    // ----- connections -----

    fn seal_connection(&self, connection: &Connection) -> Result<Vec<u8>, StoreError> {
        let link = &connection.link_name;
        let credentials = connection
            .credentials
            .clone()
            .try_map(|field, secret: Secret| {
                self.cipher()
                    .seal(&secret, &format!("connections/{link}/{field}"))
            })?;
        let row = Connection::<String> {
            link_name: connection.link_name.clone(),
            service: connection.service.clone(),
            status: connection.status,
            scopes: connection.scopes.clone(),
            metadata: connection.metadata.clone(),
            credentials,
            last_error: connection.last_error.clone(),
            created_at_ms: connection.created_at_ms,
            updated_at_ms: connection.updated_at_ms,
            last_refresh_ms: connection.last_refresh_ms,
            history: connection.history.clone(),
        };
        serde_json::to_vec(&row)
            .map_err(|e| StoreError::Corrupt(format!("connections/{link}"), e.to_string()))
    }

    fn open_connection(&self, link: &str, bytes: &[u8]) -> Result<Connection, StoreError> {
        let row: Connection<String> = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Corrupt(format!("connections/{link}"), e.to_string()))?;
        let credentials = row.credentials.try_map(|field, sealed| {
            self.cipher()
                .open(&sealed, &format!("connections/{link}/{field}"))
        })?;
        Ok(Connection {
            link_name: row.link_name,
            service: row.service,
            status: row.status,
            scopes: row.scopes,
            metadata: row.metadata,
            credentials,
            last_error: row.last_error,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
            last_refresh_ms: row.last_refresh_ms,
            history: row.history,
        })
    }

    /// Adds a new connection of an existing service.
    pub fn create_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        validate_link_name(&connection.link_name).map_err(StoreError::Invalid)?;
        let service = self
            .service(&connection.service)?
            .ok_or_else(|| StoreError::NotFound {
                kind: "service",
                name: connection.service.clone(),
            })?;
        let matches = matches!(
            (service.auth_type, &connection.credentials),
            (AuthType::Oauth2, Credentials::None)
                | (AuthType::ApiKey, Credentials::ApiKey { .. })
                | (AuthType::Basic, Credentials::Basic { .. })
                | (AuthType::Bearer, Credentials::Bearer { .. })
                | (AuthType::Oauth2, Credentials::Oauth2 { .. })
        );
        if !matches {
            let hint = if service.auth_type == AuthType::Oauth2 {
                "; create it without credentials and authorise it".to_owned()
            } else {
                format!(
                    "; give `credentials` with type `{}`",
                    service.auth_type.as_str()
                )
            };
            return Err(StoreError::Invalid(format!(
                "service `{}` uses {} credentials{hint}",
                service.name,
                service.auth_type.as_str()
            )));
        }
        let bytes = self.seal_connection(connection)?;
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            if table
                .get(connection.link_name.as_str())
                .map_err(db)?
                .is_some()
            {
                return Err(StoreError::Exists {
                    kind: "connection",
                    name: connection.link_name.clone(),
                });
            }
            table
                .insert(connection.link_name.as_str(), bytes.as_slice())
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        if connection.status == ConnectionStatus::Connected {
            self.announce(connection, None);
        }
        Ok(())
    }

    /// Replaces an existing connection (new tokens, status, metadata).
    pub fn update_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let bytes = self.seal_connection(connection)?;
        let txn = self.db.begin_write().map_err(db)?;
        let previous = {
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            let previous = match table.get(connection.link_name.as_str()).map_err(db)? {
                // Only the status is read: the sealed fields stay sealed.
                Some(old) => serde_json::from_slice::<Connection<String>>(old.value())
                    .map(|row| row.status)
                    .ok(),
                None => {
                    return Err(StoreError::NotFound {
                        kind: "connection",
                        name: connection.link_name.clone(),
                    });
                }
            };
            table
                .insert(connection.link_name.as_str(), bytes.as_slice())
                .map_err(db)?;
            previous
        };
        txn.commit().map_err(db)?;
        self.announce(connection, previous);
        Ok(())
    }

    /// The connection with this link name, secrets opened.
    pub fn connection(&self, link: &str) -> Result<Option<Connection>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        let Some(bytes) = table.get(link).map_err(db)? else {
            return Ok(None);
        };
        self.open_connection(link, bytes.value()).map(Some)
    }

    /// Every connection, by link name.
    pub fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (link, bytes) = row.map_err(db)?;
            out.push(self.open_connection(link.value(), bytes.value())?);
        }
        Ok(out)
    }

    /// Every connection with its secrets still sealed: for listings, which
    /// need only whether a secret exists, not the secret.
    pub fn sealed_connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (link, bytes) = row.map_err(db)?;
            out.push(serde_json::from_slice(bytes.value()).map_err(|e| {
                StoreError::Corrupt(format!("connections/{}", link.value()), e.to_string())
            })?);
        }
        Ok(out)
    }

    /// The connection with this link name, its secrets still sealed.
    pub fn sealed_connection(&self, link: &str) -> Result<Option<Connection<String>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        let Some(bytes) = table.get(link).map_err(db)? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("connections/{link}"), e.to_string()))
    }

    /// Removes a connection.
    pub fn delete_connection(&self, link: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            table.remove(link).map_err(db)?.is_some()
        };
        txn.commit().map_err(db)?;
        if !removed {
            return Err(StoreError::NotFound {
                kind: "connection",
                name: link.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, auth_type: AuthType) -> Service {
        Service {
            name: name.into(),
            auth_type,
            base_url: Some("https://api.example.com/v1".into()),
            allowed_hosts: vec![],
            placement: Placement::bearer(),
            oauth: None,
            has_client_secret: false,
            problem: None,
            created_at_ms: now_ms(),
        }
    }

    fn connection(link: &str, service: &str, credentials: Credentials<Secret>) -> Connection {
        Connection {
            link_name: link.into(),
            service: service.into(),
            status: ConnectionStatus::Connected,
            scopes: vec![],
            metadata: Default::default(),
            credentials,
            last_error: None,
            created_at_ms: now_ms(),
            updated_at_ms: now_ms(),
            last_refresh_ms: None,
            history: Vec::new(),
        }
    }

    #[test]
    fn connections_round_trip_and_validate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .create_service(&service("svc", AuthType::Bearer), None)
            .unwrap();
        let token = Credentials::Bearer {
            token: Secret::new("t0ken".into()),
        };
        store
            .create_connection(&connection("main", "svc", token.clone()))
            .unwrap();
        let back = store.connection("main").unwrap().unwrap();
        assert_eq!(back.credentials, token);

        let dup = store.create_connection(&connection("main", "svc", token.clone()));
        assert!(matches!(dup, Err(StoreError::Exists { .. })));
        let bad = store.create_connection(&connection("Main-1", "svc", token.clone()));
        assert!(matches!(bad, Err(StoreError::Invalid(_))));
        let wrong_kind = Credentials::ApiKey {
            key: Secret::new("k".into()),
        };
        assert!(
            store
                .create_connection(&connection("other", "svc", wrong_kind))
                .is_err()
        );
        let no_service = store.create_connection(&connection("x", "nope", token));
        assert!(matches!(no_service, Err(StoreError::NotFound { .. })));
        assert!(store.delete_service("svc").is_err(), "in use");
        store.delete_connection("main").unwrap();
        store.delete_service("svc").unwrap();
    }

    #[test]
    fn kv_is_namespaced_per_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let store = Store::open(&data_dir).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&data_dir).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700, "a new data directory is private");
        store.kv_set("a", "cursor/1", b"x").unwrap();
        store.kv_set("a", "cursor/2", b"y").unwrap();
        store.kv_set("a", "other", b"z").unwrap();
        store.kv_set("b", "cursor/1", b"w").unwrap();
        assert_eq!(
            store.kv_keys("a", "cursor/").unwrap(),
            ["cursor/1", "cursor/2"]
        );
        assert_eq!(store.kv_get("b", "cursor/1").unwrap().unwrap(), b"w");
        store.kv_delete("a", "cursor/1").unwrap();
        assert_eq!(store.kv_get("a", "cursor/1").unwrap(), None);
        assert!(store.kv_set("a", "", b"").is_err());
        assert!(
            store
                .kv_set("a", "big", &vec![0; MAX_KV_VALUE + 1])
                .is_err()
        );
    }
}
