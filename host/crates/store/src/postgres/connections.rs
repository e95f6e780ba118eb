//! Connections in PostgreSQL: one row per link name with its service (a
//! foreign key) and its JSON, credentials sealed.

use async_trait::async_trait;

use super::{Postgres, Prepared, decode, is_unique_violation};
use crate::StoreError;
use crate::encoded::encode;
use junction_core::model::{Connection, ConnectionStatus};

pub(super) fn decode_row(row: &tokio_postgres::Row) -> Result<Connection<String>, StoreError> {
    decode(
        &format!("connections/{}", row.get::<_, &str>(0)),
        row.get(1),
    )
}

/// Every connection, by link name, through `client` (a transaction or not).
pub(super) async fn all(client: &impl Prepared) -> Result<Vec<Connection<String>>, StoreError> {
    let rows = client
        .rows(
            "SELECT link_name, doc FROM connections ORDER BY link_name",
            &[],
        )
        .await?;
    rows.iter().map(decode_row).collect()
}

#[async_trait]
impl crate::connections::ConnectionRows for Postgres {
    async fn create_connection(&self, row: &Connection<String>) -> Result<(), StoreError> {
        let doc = encode(&format!("connections/{}", row.link_name), row)?;
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let service = txn
            .maybe_row(
                "SELECT 1 FROM services WHERE name = $1 FOR SHARE",
                &[&row.service],
            )
            .await?;
        if service.is_none() {
            return Err(StoreError::NotFound {
                kind: "service",
                name: row.service.clone(),
            });
        }
        let inserted = txn
            .run(
                "INSERT INTO connections (link_name, service, doc) VALUES ($1, $2, $3)",
                &[&row.link_name, &row.service, &doc],
            )
            .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => Err(StoreError::Exists {
                kind: "connection",
                name: row.link_name.clone(),
            }),
            Err(err) => Err(err),
            Ok(_) => Ok(txn.commit().await?),
        }
    }

    async fn update_connection(
        &self,
        row: &Connection<String>,
    ) -> Result<Option<ConnectionStatus>, StoreError> {
        let doc = encode(&format!("connections/{}", row.link_name), row)?;
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(old) = txn
            .maybe_row(
                "SELECT link_name, doc FROM connections WHERE link_name = $1 FOR UPDATE",
                &[&row.link_name],
            )
            .await?
        else {
            return Err(StoreError::NotFound {
                kind: "connection",
                name: row.link_name.clone(),
            });
        };
        let previous = decode_row(&old).ok().map(|old| old.status);
        txn.run(
            "UPDATE connections SET doc = $2, service = $3 WHERE link_name = $1",
            &[&row.link_name, &doc, &row.service],
        )
        .await?;
        txn.commit().await?;
        Ok(previous)
    }

    async fn connection(&self, link: &str) -> Result<Option<Connection<String>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT link_name, doc FROM connections WHERE link_name = $1",
                &[&link],
            )
            .await?;
        row.as_ref().map(decode_row).transpose()
    }

    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        let client = self.client().await?;
        all(&client).await
    }

    async fn delete_connection(&self, link: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .run("DELETE FROM connections WHERE link_name = $1", &[&link])
            .await?;
        if removed == 0 {
            return Err(StoreError::NotFound {
                kind: "connection",
                name: link.to_owned(),
            });
        }
        Ok(())
    }
}
