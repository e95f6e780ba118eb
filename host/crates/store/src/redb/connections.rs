//! Connections in redb, their credentials sealed: one table keyed by
//! [`row_key`], so an end user's connections sit together.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::connections::{end_user_prefix, error_name, listing_order, row_key};
use junction_core::model::{Connection, ConnectionStatus};

pub(super) const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");

fn decode(link: &str, bytes: &[u8]) -> Result<Connection<String>, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("connections/{link}"), e))
}

fn encode(row: &Connection<String>) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(row).map_err(|e| corrupt(format!("connections/{}", row.link_name), e))
}

fn not_found(end_user: Option<&str>, link: &str) -> StoreError {
    StoreError::NotFound {
        kind: "connection",
        name: error_name(end_user, link),
    }
}

/// Every connection, read inside `txn`.
pub(super) fn all_in(txn: &redb::WriteTransaction) -> Result<Vec<Connection<String>>, StoreError> {
    collect(&txn.open_table(CONNECTIONS).map_err(db)?)
}

/// Every connection, as of the read transaction `txn`.
pub(super) fn read_all(txn: &redb::ReadTransaction) -> Result<Vec<Connection<String>>, StoreError> {
    collect(&txn.open_table(CONNECTIONS).map_err(db)?)
}

fn collect(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<Connection<String>>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(db)? {
        let (link, bytes) = row.map_err(db)?;
        out.push(decode(link.value(), bytes.value())?);
    }
    out.sort_by(listing_order);
    Ok(out)
}

/// Per link name, the refresh lock.
pub(super) type Locks =
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>;

/// A held in-process refresh lock.
struct Held(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

#[async_trait]
impl crate::connections::ConnectionLock for Held {
    async fn release(self: Box<Self>) {}
}

impl Redb {
    fn create_connection(&self, row: &Connection<String>) -> Result<(), StoreError> {
        let bytes = encode(row)?;
        let txn = self.db.begin_write().map_err(db)?;
        {
            let services = txn.open_table(super::services::SERVICES).map_err(db)?;
            if services.get(row.service.as_str()).map_err(db)?.is_none() {
                return Err(StoreError::NotFound {
                    kind: "service",
                    name: row.service.clone(),
                });
            }
            let key = row_key(row.end_user.as_deref(), &row.link_name);
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            if table.get(key.as_str()).map_err(db)?.is_some() {
                return Err(StoreError::Exists {
                    kind: "connection",
                    name: error_name(row.end_user.as_deref(), &row.link_name),
                });
            }
            table.insert(key.as_str(), bytes.as_slice()).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError> {
        let bytes = encode(row)?;
        let key = row_key(row.end_user.as_deref(), &row.link_name);
        let txn = self.db.begin_write().map_err(db)?;
        let previous = {
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            let previous = match table.get(key.as_str()).map_err(db)? {
                Some(old) => serde_json::from_slice::<Connection<String>>(old.value())
                    .map(|old| old.status)
                    .ok(),
                None => return Err(not_found(row.end_user.as_deref(), &row.link_name)),
            };
            table.insert(key.as_str(), bytes.as_slice()).map_err(db)?;
            previous
        };
        txn.commit().map_err(db)?;
        Ok(previous)
    }

    fn connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection<String>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        match table.get(row_key(end_user, link).as_str()).map_err(db)? {
            Some(bytes) => decode(link, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        read_all(&self.db.begin_read().map_err(db)?)
    }

    fn end_user_connections(&self, end_user: &str) -> Result<Vec<Connection<String>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        let prefix = end_user_prefix(end_user);
        let mut out = Vec::new();
        for row in table.range(prefix.as_str()..).map_err(db)? {
            let (key, bytes) = row.map_err(db)?;
            let Some(link) = key.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            out.push(decode(link, bytes.value())?);
        }
        Ok(out)
    }

    fn delete_connection(&self, end_user: Option<&str>, link: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let removed = txn
            .open_table(CONNECTIONS)
            .map_err(db)?
            .remove(row_key(end_user, link).as_str())
            .map_err(db)?
            .is_some();
        if !removed {
            return Err(not_found(end_user, link));
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl crate::connections::ConnectionRows for RedbBackend {
    async fn lock_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Box<dyn crate::connections::ConnectionLock>, StoreError> {
        let lock = self
            .0
            .connection_locks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(row_key(end_user, link))
            .or_default()
            .clone();
        Ok(Box::new(Held(lock.lock_owned().await)))
    }

    async fn create_connection(&self, row: &Connection<String>) -> Result<(), StoreError> {
        let row = row.clone();
        self.run(move |redb| redb.create_connection(&row)).await
    }

    async fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError> {
        let row = row.clone();
        self.run(move |redb| redb.update_connection(&row)).await
    }

    async fn connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection<String>>, StoreError> {
        let (end_user, link) = (end_user.map(str::to_owned), link.to_owned());
        self.run(move |redb| redb.connection(end_user.as_deref(), &link))
            .await
    }

    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        self.run(|redb| redb.connections()).await
    }

    async fn end_user_connections(
        &self,
        end_user: &str,
    ) -> Result<Vec<Connection<String>>, StoreError> {
        let end_user = end_user.to_owned();
        self.run(move |redb| redb.end_user_connections(&end_user))
            .await
    }

    async fn delete_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<(), StoreError> {
        let (end_user, link) = (end_user.map(str::to_owned), link.to_owned());
        self.run(move |redb| redb.delete_connection(end_user.as_deref(), &link))
            .await
    }
}
