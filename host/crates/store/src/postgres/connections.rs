//! Connections in PostgreSQL: one row per end user and link name (`''`
//! for the organisation's own) with its service (a foreign key) and its
//! JSON, credentials sealed.

use async_trait::async_trait;

use super::{Postgres, Prepared, decode, is_unique_violation};
use crate::StoreError;
use crate::connections::{error_name, row_key};
use crate::encoded::encode;
use junction_core::model::{Connection, ConnectionStatus};

/// The `end_user` column's value: `''` stands for the organisation.
fn owner(end_user: Option<&str>) -> &str {
    end_user.unwrap_or("")
}

fn not_found(end_user: Option<&str>, link: &str) -> StoreError {
    StoreError::NotFound {
        kind: "connection",
        name: error_name(end_user, link),
    }
}

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
            "SELECT link_name, doc FROM connections ORDER BY end_user, link_name",
            &[],
        )
        .await?;
    rows.iter().map(decode_row).collect()
}

/// Advisory locks taken for connections share this first key, so they
/// never meet another application's locks on the same database.
const CONNECTION_LOCKS: i32 = 0x6a63; // "jc"

/// A session-level advisory lock, held by one pooled connection.
struct AdvisoryLock {
    client: Option<deadpool_postgres::Client>,
    /// The connection's [`row_key`].
    key: String,
}

#[async_trait]
impl crate::connections::ConnectionLock for AdvisoryLock {
    async fn release(mut self: Box<Self>) {
        let Some(client) = self.client.take() else {
            return;
        };
        let unlocked = client
            .run(
                "SELECT pg_advisory_unlock($1, hashtext($2))",
                &[&CONNECTION_LOCKS, &self.key],
            )
            .await;
        if unlocked.is_err() {
            // The session ends with the connection, and its locks with it.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Not back to the pool with the lock still held: closing the
            // connection ends the session, which lets the lock go.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

#[async_trait]
impl crate::connections::ConnectionRows for Postgres {
    async fn lock_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Box<dyn crate::connections::ConnectionLock>, StoreError> {
        // The guard exists before the wait: a caller that gives up while
        // waiting drops it, and the connection (whose lock request may
        // still be granted) is closed rather than pooled.
        let lock = AdvisoryLock {
            client: Some(self.client().await?),
            key: row_key(end_user, link),
        };
        if let Some(client) = &lock.client {
            client
                .run(
                    "SELECT pg_advisory_lock($1, hashtext($2))",
                    &[&CONNECTION_LOCKS, &lock.key],
                )
                .await?;
        }
        Ok(Box::new(lock))
    }

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
                "INSERT INTO connections (link_name, service, doc, end_user) VALUES ($1, $2, $3, $4)",
                &[&row.link_name, &row.service, &doc, &owner(row.end_user.as_deref())],
            )
            .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => Err(StoreError::Exists {
                kind: "connection",
                name: error_name(row.end_user.as_deref(), &row.link_name),
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
        let end_user = owner(row.end_user.as_deref());
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(old) = txn
            .maybe_row(
                "SELECT link_name, doc FROM connections WHERE link_name = $1 AND end_user = $2 FOR UPDATE",
                &[&row.link_name, &end_user],
            )
            .await?
        else {
            return Err(not_found(row.end_user.as_deref(), &row.link_name));
        };
        let previous = decode_row(&old).ok().map(|old| old.status);
        txn.run(
            "UPDATE connections SET doc = $2, service = $3 WHERE link_name = $1 AND end_user = $4",
            &[&row.link_name, &doc, &row.service, &end_user],
        )
        .await?;
        txn.commit().await?;
        Ok(previous)
    }

    async fn connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<Option<Connection<String>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT link_name, doc FROM connections WHERE link_name = $1 AND end_user = $2",
                &[&link, &owner(end_user)],
            )
            .await?;
        row.as_ref().map(decode_row).transpose()
    }

    async fn end_user_connections(
        &self,
        end_user: &str,
    ) -> Result<Vec<Connection<String>>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows(
                "SELECT link_name, doc FROM connections WHERE end_user = $1 ORDER BY link_name",
                &[&end_user],
            )
            .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn connections(&self) -> Result<Vec<Connection<String>>, StoreError> {
        let client = self.client().await?;
        all(&client).await
    }

    async fn delete_connection(
        &self,
        end_user: Option<&str>,
        link: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .run(
                "DELETE FROM connections WHERE link_name = $1 AND end_user = $2",
                &[&link, &owner(end_user)],
            )
            .await?;
        if removed == 0 {
            return Err(not_found(end_user, link));
        }
        Ok(())
    }
}
