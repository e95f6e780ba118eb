//! Services in PostgreSQL: one row per service, its JSON beside its sealed
//! client secret.

use async_trait::async_trait;

use super::{Postgres, Prepared, decode, is_unique_violation};
use crate::StoreError;
use crate::encoded::encode;
use junction_core::model::Service;

#[async_trait]
impl crate::services::ServiceRows for Postgres {
    async fn put_service(
        &self,
        service: &Service,
        replace: bool,
        sealed_client_secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = service.name.as_str();
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let stored = txn
            .maybe_row(
                "SELECT sealed_client_secret IS NOT NULL FROM services WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?;
        let has_secret = match (stored, replace) {
            (Some(_), false) => {
                return Err(StoreError::Exists {
                    kind: "service",
                    name: name.to_owned(),
                });
            }
            (None, true) => {
                return Err(StoreError::NotFound {
                    kind: "service",
                    name: name.to_owned(),
                });
            }
            (Some(row), true) => sealed_client_secret.is_some() || row.get::<_, bool>(0),
            (None, false) => sealed_client_secret.is_some(),
        };
        let mut row = service.clone();
        row.has_client_secret = has_secret;
        let doc = encode(&format!("services/{name}"), &row)?;
        let written = txn
            .run(
                "INSERT INTO services (name, doc, sealed_client_secret) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc, \
                 sealed_client_secret = COALESCE(EXCLUDED.sealed_client_secret, services.sealed_client_secret)",
                &[&name, &doc, &sealed_client_secret],
            )
            .await;
        match written {
            // Another host created it between the check and the insert.
            Err(err) if is_unique_violation(&err) => Err(StoreError::Exists {
                kind: "service",
                name: name.to_owned(),
            }),
            Err(err) => Err(err),
            Ok(_) => Ok(txn.commit().await?),
        }
    }

    async fn service(&self, name: &str) -> Result<Option<Service>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM services WHERE name = $1", &[&name])
            .await?;
        row.map(|row| decode(&format!("services/{name}"), row.get(0)))
            .transpose()
    }

    async fn services(&self) -> Result<Vec<Service>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows("SELECT name, doc FROM services ORDER BY name", &[])
            .await?;
        rows.iter()
            .map(|row| decode(&format!("services/{}", row.get::<_, &str>(0)), row.get(1)))
            .collect()
    }

    async fn sealed_client_secret(&self, service: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT sealed_client_secret FROM services WHERE name = $1",
                &[&service],
            )
            .await?;
        Ok(row.and_then(|row| row.get(0)))
    }

    async fn delete_service(&self, name: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let exists = txn
            .maybe_row(
                "SELECT 1 FROM services WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound {
                kind: "service",
                name: name.to_owned(),
            });
        }
        // The row lock above makes a concurrent create_connection (which
        // takes a share lock on the service) wait for this answer.
        let users: Vec<String> = txn
            .rows(
                "SELECT link_name FROM connections WHERE service = $1 ORDER BY link_name",
                &[&name],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !users.is_empty() {
            return Err(StoreError::ServiceInUse {
                service: name.to_owned(),
                connections: users,
            });
        }
        txn.run("DELETE FROM services WHERE name = $1", &[&name])
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
