//! Connections in redb, their credentials sealed.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use junction_core::model::{Connection, ConnectionStatus};

pub(super) const CONNECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("connections");

fn decode(link: &str, bytes: &[u8]) -> Result<Connection<String>, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("connections/{link}"), e))
}

fn encode(row: &Connection<String>) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(row).map_err(|e| corrupt(format!("connections/{}", row.link_name), e))
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
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            if table.get(row.link_name.as_str()).map_err(db)?.is_some() {
                return Err(StoreError::Exists {
                    kind: "connection",
                    name: row.link_name.clone(),
                });
            }
            table
                .insert(row.link_name.as_str(), bytes.as_slice())
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError> {
        let bytes = encode(row)?;
        let txn = self.db.begin_write().map_err(db)?;
        let previous = {
            let mut table = txn.open_table(CONNECTIONS).map_err(db)?;
            let previous = match table.get(row.link_name.as_str()).map_err(db)? {
                Some(old) => serde_json::from_slice::<Connection<String>>(old.value())
                    .map(|old| old.status)
                    .ok(),
                None => {
                    return Err(StoreError::NotFound {
                        kind: "connection",
                        name: row.link_name.clone(),
                    });
                }
            };
            table
                .insert(row.link_name.as_str(), bytes.as_slice())
                .map_err(db)?;
            previous
        };
        txn.commit().map_err(db)?;
        Ok(previous)
    }

    fn connection(&self, link: &str) -> Result<Option<Connection<String>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECTIONS).map_err(db)?;
        match table.get(link).map_err(db)? {
            Some(bytes) => decode(link, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        read_all(&self.db.begin_read().map_err(db)?)
    }

    fn delete_connection(&self, link: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let removed = txn
            .open_table(CONNECTIONS)
            .map_err(db)?
            .remove(link)
            .map_err(db)?
            .is_some();
        if !removed {
            return Err(StoreError::NotFound {
                kind: "connection",
                name: link.into(),
            });
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl crate::connections::ConnectionRows for RedbBackend {
    async fn lock_connection(
        &self,
        link: &str,
    ) -> Result<Box<dyn crate::connections::ConnectionLock>, StoreError> {
        let lock = self
            .0
            .connection_locks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(link.to_owned())
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

    async fn connection(&self, link: &str) -> Result<Option<Connection<String>>, StoreError> {
        let link = link.to_owned();
        self.run(move |redb| redb.connection(&link)).await
    }

    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        self.run(|redb| redb.connections()).await
    }

    async fn delete_connection(&self, link: &str) -> Result<(), StoreError> {
        let link = link.to_owned();
        self.run(move |redb| redb.delete_connection(&link)).await
    }
}
