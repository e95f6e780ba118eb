//! Pending OAuth authorizations: one row per `state` handed to a browser,
//! keyed by the state's sha256 (the state itself is never stored), holding
//! the connection it is for, the redirect URI used and the PKCE verifier,
//! sealed. A row is taken (removed) when its callback arrives, so a state
//! works once; rows older than the TTL are purged.

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Secret, Store, StoreError, db, now_ms};

pub(super) const AUTHORIZATIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("oauth_authorizations");

/// How long a state is accepted.
pub const STATE_TTL_MS: u64 = 10 * 60 * 1000;

/// An authorization the browser is on its way through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// The connection being authorised.
    pub link_name: String,
    /// The redirect URI sent with the authorize request.
    pub redirect_uri: String,
    /// The PKCE verifier, when PKCE is on.
    pub verifier: Option<Secret>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// When the authorize URL was made.
    pub created_at_ms: u64,
    /// Whether the web console started it (the browser goes back there).
    pub from_console: bool,
}

#[derive(Serialize, Deserialize)]
struct Row {
    link_name: String,
    redirect_uri: String,
    verifier: Option<String>,
    scopes: Vec<String>,
    created_at_ms: u64,
    #[serde(default)]
    from_console: bool,
}

fn aad(state_hash: &str) -> String {
    format!("oauth_authorizations/{state_hash}/verifier")
}

/// Re-seals the PKCE verifiers not sealed with `cipher`'s primary key.
pub(super) fn reseal_in(
    txn: &redb::WriteTransaction,
    cipher: &super::Cipher,
) -> Result<usize, StoreError> {
    use redb::ReadableTable;
    let mut table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
    let mut updates = Vec::new();
    for row in table.iter().map_err(db)? {
        let (key, bytes) = row.map_err(db)?;
        let state_hash = key.value().to_owned();
        let mut parsed: Row = serde_json::from_slice(bytes.value())
            .map_err(|e| StoreError::Corrupt("oauth_authorizations".into(), e.to_string()))?;
        let Some(sealed) = &parsed.verifier else {
            continue;
        };
        if super::crypto::sealed_key_id(sealed) == Some(cipher.key_id()) {
            continue;
        }
        let opened = cipher.open(sealed, &aad(&state_hash))?;
        parsed.verifier = Some(cipher.seal(&opened, &aad(&state_hash))?);
        let bytes = serde_json::to_vec(&parsed)
            .map_err(|e| StoreError::Corrupt("oauth_authorizations".into(), e.to_string()))?;
        updates.push((state_hash, bytes));
    }
    for (key, bytes) in &updates {
        table.insert(key.as_str(), bytes.as_slice()).map_err(db)?;
    }
    Ok(updates.len())
}

impl Store {
    /// Records a pending authorization under the state's hash, and drops
    /// expired ones.
    pub fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        let verifier = pending
            .verifier
            .as_ref()
            .map(|v| self.cipher().seal(v, &aad(state_hash)))
            .transpose()?;
        let row = Row {
            link_name: pending.link_name.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            verifier,
            scopes: pending.scopes.clone(),
            created_at_ms: pending.created_at_ms,
            from_console: pending.from_console,
        };
        let bytes = serde_json::to_vec(&row)
            .map_err(|e| StoreError::Corrupt("oauth_authorizations".into(), e.to_string()))?;
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

    /// The connection a pending authorization is for, read only.
    pub fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
        let Some(bytes) = table.get(state_hash).map_err(db)? else {
            return Ok(None);
        };
        let row: Row = serde_json::from_slice(bytes.value())
            .map_err(|e| StoreError::Corrupt("oauth_authorizations".into(), e.to_string()))?;
        Ok(Some(row.link_name))
    }

    /// Takes the pending authorization for this state hash: it is removed,
    /// so a second callback with the same state finds nothing. A state that
    /// was never issued (or was already taken) costs a read, not a write: the
    /// callback is public, and a flood of made-up states must not occupy the
    /// single writer.
    pub fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        if self.pending_authorization_link(state_hash)?.is_none() {
            return Ok(None);
        }
        let txn = self.db.begin_write().map_err(db)?;
        let row = {
            let mut table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
            let removed = table.remove(state_hash).map_err(db)?;
            match removed {
                Some(bytes) => Some(serde_json::from_slice::<Row>(bytes.value()).map_err(|e| {
                    StoreError::Corrupt("oauth_authorizations".into(), e.to_string())
                })?),
                None => None,
            }
        };
        txn.commit().map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let verifier = row
            .verifier
            .map(|sealed| self.cipher().open(&sealed, &aad(state_hash)))
            .transpose()?;
        Ok(Some(PendingAuthorization {
            link_name: row.link_name,
            redirect_uri: row.redirect_uri,
            verifier,
            scopes: row.scopes,
            created_at_ms: row.created_at_ms,
            from_console: row.from_console,
        }))
    }

    /// How many authorizations are pending (for tests and metrics).
    pub fn pending_authorization_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(AUTHORIZATIONS).map_err(db)?;
        table.len().map_err(db)
    }
}
