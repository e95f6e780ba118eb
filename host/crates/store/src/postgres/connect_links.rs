//! Connect links in PostgreSQL: one row per link id with its expiry beside
//! its JSON; binding and using lock the row, so racing hosts queue.

use async_trait::async_trait;

use super::{Postgres, Prepared, big, decode};
use crate::StoreError;
use crate::connect_links::{ConnectLink, ConnectLinkRows, KEEP_EXPIRED_MS, bound, used};
use crate::encoded::encode;

impl Postgres {
    /// Applies `change` to the locked row; answers the link before the
    /// change (or after, when it changed) and whether it changed.
    async fn change_link(
        &self,
        id: &str,
        change: impl FnOnce(ConnectLink) -> Option<ConnectLink> + Send,
    ) -> Result<Option<(ConnectLink, bool)>, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(row) = txn
            .maybe_row(
                "SELECT doc FROM connect_links WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let current: ConnectLink = decode("connect_links", row.get(0))?;
        match change(current.clone()) {
            Some(next) => {
                let doc = encode("connect_links", &next)?;
                txn.run(
                    "UPDATE connect_links SET doc = $2 WHERE id = $1",
                    &[&id, &doc],
                )
                .await?;
                txn.commit().await?;
                Ok(Some((next, true)))
            }
            None => Ok(Some((current, false))),
        }
    }
}

#[async_trait]
impl ConnectLinkRows for Postgres {
    async fn put_connect_link(&self, link: &ConnectLink) -> Result<(), StoreError> {
        let doc = encode("connect_links", link)?;
        let cutoff = big(link.created_at_ms.saturating_sub(KEEP_EXPIRED_MS));
        let client = self.client().await?;
        client
            .run(
                "DELETE FROM connect_links WHERE expires_at_ms < $1",
                &[&cutoff],
            )
            .await?;
        client
            .run(
                "INSERT INTO connect_links (id, expires_at_ms, doc) VALUES ($1, $2, $3)",
                &[&link.id, &big(link.expires_at_ms), &doc],
            )
            .await?;
        Ok(())
    }

    async fn connect_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM connect_links WHERE id = $1", &[&id])
            .await?;
        row.map(|row| decode("connect_links", row.get(0)))
            .transpose()
    }

    async fn bind_connect_link(
        &self,
        id: &str,
        browser: &str,
    ) -> Result<Option<ConnectLink>, StoreError> {
        let changed = self
            .change_link(id, |link| match bound(link, browser) {
                (link, true) => Some(link),
                (_, false) => None,
            })
            .await?;
        Ok(changed.map(|(link, _)| link))
    }

    async fn use_connect_link(
        &self,
        id: &str,
        browser: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .change_link(id, |link| used(link, browser, at_ms))
            .await?;
        Ok(changed.is_some_and(|(_, changed)| changed))
    }
}
