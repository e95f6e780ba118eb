//! Pending OAuth authorizations in redb, keyed by the state's sha256; the
//! PKCE verifier arrives and leaves sealed.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::sessions::PendingTarget;
use crate::sessions::{PendingAuthorization, STATE_TTL_MS};
use junction_core::model::ConnectionKey;
use junction_core::now_ms;

pub(super) const AUTHORIZATIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("oauth_authorizations");

/// A row as stored (the file's format).
#[derive(Serialize, Deserialize)]
pub(super) struct Row {
    pub(super) link_name: String,
    pub(super) redirect_uri: String,
    pub(super) verifier: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) created_at_ms: u64,
    #[serde(default)]
    pub(super) from_console: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) end_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) connect_link: Option<String>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<Row, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("oauth_authorizations", e))
}

pub(super) fn encode(row: &Row) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(row).map_err(|e| corrupt("oauth_authorizations", e))
}

impl Redb {
    fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization<String>,
    ) -> Result<(), StoreError> {
        let bytes = encode(&Row {
            link_name: pending.link_name.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            verifier: pending.verifier.clone(),
            scopes: pending.scopes.clone(),
            created_at_ms: pending.created_at_ms,
            from_console: pending.from_console,
            end_user: pending.end_user.clone(),
            connect_link: pending.connect_link.clone(),
        })?;
        let cutoff = now_ms().saturating_sub(STATE_TTL_MS);
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
            table
                .retain(|_, value| {
                    serde_json::from_slice::<Row>(value)
                        .map(|r| r.created_at_ms >= cutoff)
                        .unwrap_or(false)
                })
                .map_err(db)?;
            table.insert(state_hash, bytes.as_slice()).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingTarget>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
        let Some(bytes) = table.get(state_hash).map_err(db)? else {
            return Ok(None);
        };
        let row = decode(bytes.value())?;
        Ok(Some(PendingTarget {
            key: ConnectionKey::new(row.end_user.as_deref(), &row.link_name),
            connect_link: row.connect_link,
        }))
    }

    fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization<String>>, StoreError> {
        // A made-up state (the callback is public) must not occupy the
        // single writer: look before taking.
        if self.pending_authorization_link(state_hash)?.is_none() {
            return Ok(None);
        }
        let txn = self.db.begin_write().map_err(db)?;
        let row = {
            let mut table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
            let removed = table.remove(state_hash).map_err(db)?;
            match removed {
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            }
        };
        txn.commit().map_err(db)?;
        Ok(row.map(|row| PendingAuthorization {
            link_name: row.link_name,
            redirect_uri: row.redirect_uri,
            verifier: row.verifier,
            scopes: row.scopes,
            created_at_ms: row.created_at_ms,
            from_console: row.from_console,
            end_user: row.end_user,
            connect_link: row.connect_link,
        }))
    }

    fn pending_authorization_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
        table.len().map_err(db)
    }
}

#[async_trait]
impl crate::sessions::SessionRows for RedbBackend {
    async fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization<String>,
    ) -> Result<(), StoreError> {
        let (state_hash, pending) = (state_hash.to_owned(), pending.clone());
        self.run(move |redb| redb.put_pending_authorization(&state_hash, &pending))
            .await
    }

    async fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingTarget>, StoreError> {
        let state_hash = state_hash.to_owned();
        self.run(move |redb| redb.pending_authorization_link(&state_hash))
            .await
    }

    async fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization<String>>, StoreError> {
        let state_hash = state_hash.to_owned();
        self.run(move |redb| redb.take_pending_authorization(&state_hash))
            .await
    }

    async fn pending_authorization_count(&self) -> Result<u64, StoreError> {
        self.run(|redb| redb.pending_authorization_count()).await
    }
}
