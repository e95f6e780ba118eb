//! Connect links in redb: one JSON row per link id; binding and using a
//! link are each one write transaction, so the single writer decides races.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::connect_links::{ConnectLink, ConnectLinkRows, KEEP_EXPIRED_MS, bound, used};

pub(super) const CONNECT_LINKS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("connect_links");

fn decode(bytes: &[u8]) -> Result<ConnectLink, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("connect_links", e))
}

fn encode(link: &ConnectLink) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(link).map_err(|e| corrupt("connect_links", e))
}

impl Redb {
    fn put_connect_link(&self, link: &ConnectLink) -> Result<(), StoreError> {
        let bytes = encode(link)?;
        let cutoff = link.created_at_ms.saturating_sub(KEEP_EXPIRED_MS);
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(CONNECT_LINKS).map_err(db)?;
            let mut stale = Vec::new();
            for row in table.iter().map_err(db)? {
                let (id, value) = row.map_err(db)?;
                if decode(value.value())?.expires_at_ms < cutoff {
                    stale.push(id.value().to_owned());
                }
            }
            for id in stale {
                table.remove(id.as_str()).map_err(db)?;
            }
            table
                .insert(link.id.as_str(), bytes.as_slice())
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn connect_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONNECT_LINKS).map_err(db)?;
        table
            .get(id)
            .map_err(db)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Applies `change` to the link in one write transaction; `None` from
    /// `change` leaves it as it is. Answers the link before the change and
    /// whether it changed.
    fn change_link(
        &self,
        id: &str,
        change: impl FnOnce(ConnectLink) -> Option<ConnectLink>,
    ) -> Result<Option<(ConnectLink, bool)>, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let answer = {
            let mut table = txn.open_table(CONNECT_LINKS).map_err(db)?;
            let Some(current) = table.get(id).map_err(db)?.map(|v| decode(v.value())) else {
                return Ok(None);
            };
            let current = current?;
            match change(current.clone()) {
                Some(next) => {
                    table.insert(id, encode(&next)?.as_slice()).map_err(db)?;
                    (next, true)
                }
                None => (current, false),
            }
        };
        if answer.1 {
            txn.commit().map_err(db)?;
        }
        Ok(Some(answer))
    }
}

#[async_trait]
impl ConnectLinkRows for RedbBackend {
    async fn put_connect_link(&self, link: &ConnectLink) -> Result<(), StoreError> {
        let link = link.clone();
        self.run(move |redb| redb.put_connect_link(&link)).await
    }

    async fn connect_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError> {
        let id = id.to_owned();
        self.run(move |redb| redb.connect_link(&id)).await
    }

    async fn bind_connect_link(
        &self,
        id: &str,
        browser: &str,
    ) -> Result<Option<ConnectLink>, StoreError> {
        let (id, browser) = (id.to_owned(), browser.to_owned());
        self.run(move |redb| {
            let changed = redb.change_link(&id, |link| match bound(link, &browser) {
                (link, true) => Some(link),
                (_, false) => None,
            })?;
            Ok(changed.map(|(link, _)| link))
        })
        .await
    }

    async fn use_connect_link(
        &self,
        id: &str,
        browser: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let (id, browser) = (id.to_owned(), browser.to_owned());
        self.run(move |redb| {
            let changed = redb.change_link(&id, |link| used(link, &browser, at_ms))?;
            Ok(changed.is_some_and(|(_, changed)| changed))
        })
        .await
    }
}
