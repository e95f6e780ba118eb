//! The embedded backend: everything in one redb file in the data directory.
//! [`Redb`] does the work synchronously, one transaction per call (one for
//! a whole journal batch); [`RedbBackend`] implements the storage traits by
//! running that work on the blocking pool, so no async worker waits on a
//! disk write.

mod api_keys;
mod connect_links;
mod connections;
mod console;
mod executions;
mod journal;
mod kv;
mod plugins;
mod sealed;
mod services;
mod sessions;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{SCHEMA_VERSION, StoreError};

/// The redb file inside the data directory.
pub const DB_FILE: &str = "junction.redb";

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// A table keyed by sequence number (events, executions).
type BySeq<'txn> = redb::Table<'txn, u64, &'static [u8]>;

/// The newest key of `table`, if it has any rows.
fn last_seq(table: &BySeq<'_>) -> Result<Option<u64>, StoreError> {
    Ok(table.last().map_err(db)?.map(|(seq, _)| seq.value()))
}

/// Where `table` goes on: one past its last key, and never below the floor
/// `meta` keeps under `floor_key`. The floor is written only when a
/// transaction removes a table's newest rows (see [`keep_seq_floor`]), so an
/// append touches no `meta` page and a number is still never given twice.
fn next_seq(
    meta: &redb::Table<'_, &str, &str>,
    floor_key: &str,
    table: &BySeq<'_>,
) -> Result<u64, StoreError> {
    let floor = match meta.get(floor_key).map_err(db)? {
        Some(v) => v.value().parse().map_err(|e: std::num::ParseIntError| {
            StoreError::Corrupt(format!("meta/{floor_key}"), e.to_string())
        })?,
        None => 1,
    };
    Ok(last_seq(table)?.map_or(floor, |last| floor.max(last + 1)))
}

/// After removals from `table`, whose next number was `next`: if its newest
/// rows went, keeps `next` as the floor in `meta`.
fn keep_seq_floor(
    meta: &mut redb::Table<'_, &str, &str>,
    floor_key: &str,
    table: &BySeq<'_>,
    next: u64,
) -> Result<(), StoreError> {
    if last_seq(table)?.is_none_or(|last| last + 1 < next) {
        meta.insert(floor_key, next.to_string().as_str())
            .map_err(db)?;
    }
    Ok(())
}

fn db<E: Into<redb::Error>>(err: E) -> StoreError {
    StoreError::Db(err.into())
}

fn corrupt(what: impl Into<String>, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.into(), err.to_string())
}

/// The open redb file.
pub struct Redb {
    db: Database,
    data_dir: PathBuf,
    /// Whether the queued deliveries were handed out (by the first claim).
    claimed: std::sync::atomic::AtomicBool,
    /// Each connection's refresh lock: one process owns the file, so an
    /// in-process lock is one across every user of the store.
    connection_locks: connections::Locks,
}

impl Redb {
    /// Opens (creating if needed) `junction.redb` in `data_dir` and brings
    /// its schema up to this build's.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        crate::create_private_dir(data_dir)?;
        let db = Database::create(data_dir.join(DB_FILE)).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: data_dir.display().to_string(),
            },
            other => db(other),
        })?;
        let store = Redb {
            db,
            data_dir: data_dir.to_owned(),
            claimed: std::sync::atomic::AtomicBool::new(false),
            connection_locks: Default::default(),
        };
        store.migrate()?;
        Ok(store)
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
                return Err(StoreError::NewerSchema {
                    found,
                    known: SCHEMA_VERSION,
                });
            }
            // Version 0 is a new file; version 1 lacked the plugin and
            // execution tables, version 2 the event tables, which opening
            // creates, version 3 the console sessions, version 4 the API keys,
            // version 5 end users' connections (kept in the connections table
            // under their own keys, which an older build would misread),
            // version 6 the connect links.
            // Nothing is rewritten.
            txn.open_table(services::SERVICES).map_err(db)?;
            txn.open_table(connections::CONNECTIONS).map_err(db)?;
            txn.open_table(services::SERVICE_SECRETS).map_err(db)?;
            txn.open_table(sessions::AUTHORIZATIONS).map_err(db)?;
            txn.open_table(console::CONSOLE_SESSIONS).map_err(db)?;
            txn.open_table(api_keys::API_KEYS).map_err(db)?;
            txn.open_table(connect_links::CONNECT_LINKS).map_err(db)?;
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
            txn.open_table(journal::EVENTS).map_err(db)?;
            txn.open_table(journal::EVENT_IDS).map_err(db)?;
            txn.open_table(journal::IDEMPOTENCY).map_err(db)?;
            txn.open_table(journal::DELIVERIES).map_err(db)?;
            txn.open_table(journal::QUEUE).map_err(db)?;
            txn.open_table(journal::DEAD).map_err(db)?;
            txn.open_table(journal::TRIGGERS).map_err(db)?;
            txn.open_table(journal::SCHEDULES).map_err(db)?;
            txn.open_table(journal::HOOK_SECRETS).map_err(db)?;
            meta.insert("schema_version", SCHEMA_VERSION.to_string().as_str())
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .meta("schema_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        Ok(meta.get(key).map_err(db)?.map(|v| v.value().to_owned()))
    }

    fn add_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let added = {
            let mut meta = txn.open_table(META).map_err(db)?;
            if meta.get(key).map_err(db)?.is_some() {
                false
            } else {
                meta.insert(key, value).map_err(db)?;
                true
            }
        };
        txn.commit().map_err(db)?;
        Ok(added)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(META)
            .map_err(db)?
            .insert(key, value)
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }
}

/// [`Redb`] behind the storage traits.
#[derive(Clone)]
pub struct RedbBackend(Arc<Redb>);

impl RedbBackend {
    /// Opens the redb file in `data_dir` on the blocking pool.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.to_owned();
        let redb = tokio::task::spawn_blocking(move || Redb::open(&dir)).await??;
        Ok(RedbBackend(Arc::new(redb)))
    }

    /// Runs `work` on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Redb) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let redb = self.0.clone();
        tokio::task::spawn_blocking(move || work(&redb)).await?
    }
}

impl crate::backend::Backend for RedbBackend {
    fn cluster(&self) -> Option<&dyn crate::cluster::Cluster> {
        None
    }

    fn describe(&self) -> String {
        format!("redb in {}", self.0.data_dir.display())
    }
}

#[async_trait]
impl crate::meta::MetaRows for RedbBackend {
    async fn schema_version(&self) -> Result<u32, StoreError> {
        self.run(|redb| redb.schema_version()).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run(move |redb| redb.meta(&key)).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |redb| redb.set_meta(&key, &value)).await
    }

    async fn add_meta(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |redb| redb.add_meta(&key, &value)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> crate::conformance::Fresh {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let backend = RedbBackend::open(dir.path()).await.expect("redb opens");
        crate::conformance::Fresh {
            backend: Arc::new(backend),
            dir,
            schema: SCHEMA_VERSION,
        }
    }

    crate::conformance_tests!(fresh);

    #[tokio::test]
    async fn a_new_data_directory_is_private_and_a_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let _open = RedbBackend::open(&data_dir).await.unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&data_dir).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
        assert!(matches!(
            RedbBackend::open(&data_dir).await,
            Err(StoreError::InUse { .. })
        ));
    }
}
