//! Services and their sealed client secrets in redb.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use junction_core::model::Service;

pub(super) const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// Service name → its sealed OAuth client secret.
pub(super) const SERVICE_SECRETS: TableDefinition<&str, &str> =
    TableDefinition::new("service_secrets");

impl Redb {
    fn put_service(
        &self,
        service: &Service,
        replace: bool,
        sealed: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = service.name.clone();
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
            if let Some(sealed) = sealed {
                secrets.insert(name.as_str(), sealed).map_err(db)?;
            }
            let mut row = service.clone();
            row.has_client_secret = secrets.get(name.as_str()).map_err(db)?.is_some();
            let bytes = serde_json::to_vec(&row).map_err(|e| corrupt(name.clone(), e))?;
            table.insert(name.as_str(), bytes.as_slice()).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn sealed_client_secret(&self, service: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICE_SECRETS).map_err(db)?;
        Ok(table
            .get(service)
            .map_err(db)?
            .map(|v| v.value().to_owned()))
    }

    fn service(&self, name: &str) -> Result<Option<Service>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICES).map_err(db)?;
        let Some(bytes) = table.get(name).map_err(db)? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| corrupt(format!("services/{name}"), e))
    }

    fn services(&self) -> Result<Vec<Service>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(SERVICES).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (name, bytes) = row.map_err(db)?;
            out.push(
                serde_json::from_slice(bytes.value())
                    .map_err(|e| corrupt(format!("services/{}", name.value()), e))?,
            );
        }
        Ok(out)
    }

    fn delete_service(&self, name: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let removed = {
            let users: Vec<String> = super::connections::all_in(&txn)?
                .into_iter()
                .filter(|c| c.service == name)
                .map(|c| c.link_name)
                .collect();
            if !users.is_empty() {
                return Err(StoreError::ServiceInUse {
                    service: name.to_owned(),
                    connections: users,
                });
            }
            let mut table = txn.open_table(SERVICES).map_err(db)?;
            txn.open_table(SERVICE_SECRETS)
                .map_err(db)?
                .remove(name)
                .map_err(db)?;
            table.remove(name).map_err(db)?.is_some()
        };
        if !removed {
            return Err(StoreError::NotFound {
                kind: "service",
                name: name.into(),
            });
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl crate::services::ServiceRows for RedbBackend {
    async fn put_service(
        &self,
        service: &Service,
        replace: bool,
        sealed_client_secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let service = service.clone();
        let sealed = sealed_client_secret.map(str::to_owned);
        self.run(move |redb| redb.put_service(&service, replace, sealed.as_deref()))
            .await
    }

    async fn service(&self, name: &str) -> Result<Option<Service>, StoreError> {
        let name = name.to_owned();
        self.run(move |redb| redb.service(&name)).await
    }

    async fn services(&self) -> Result<Vec<Service>, StoreError> {
        self.run(|redb| redb.services()).await
    }

    async fn sealed_client_secret(&self, service: &str) -> Result<Option<String>, StoreError> {
        let service = service.to_owned();
        self.run(move |redb| redb.sealed_client_secret(&service))
            .await
    }

    async fn delete_service(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.run(move |redb| redb.delete_service(&name)).await
    }
}
