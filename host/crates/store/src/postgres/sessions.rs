//! Pending OAuth authorizations in PostgreSQL, one row per state hash. A
//! callback takes its row with `DELETE … RETURNING`, so of any number of
//! callbacks racing on any number of hosts exactly one gets it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Postgres, Prepared, big, decode, unbig};
use crate::StoreError;
use crate::encoded::encode;
use crate::sessions::PendingTarget;
use crate::sessions::{PendingAuthorization, STATE_TTL_MS};
use junction_core::model::ConnectionKey;
use junction_core::now_ms;

/// A pending authorization as stored (its verifier sealed).
#[derive(Serialize, Deserialize)]
pub(super) struct Row {
    pub(super) link_name: String,
    pub(super) redirect_uri: String,
    pub(super) verifier: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) created_at_ms: u64,
    pub(super) from_console: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) end_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) connect_link: Option<String>,
}

#[async_trait]
impl crate::sessions::SessionRows for Postgres {
    async fn put_pending_authorization(
        &self,
        state_hash: &str,
        pending: &PendingAuthorization<String>,
    ) -> Result<(), StoreError> {
        let doc = encode(
            "oauth_authorizations",
            &Row {
                link_name: pending.link_name.clone(),
                redirect_uri: pending.redirect_uri.clone(),
                verifier: pending.verifier.clone(),
                scopes: pending.scopes.clone(),
                created_at_ms: pending.created_at_ms,
                from_console: pending.from_console,
                end_user: pending.end_user.clone(),
                connect_link: pending.connect_link.clone(),
            },
        )?;
        let cutoff = big(now_ms().saturating_sub(STATE_TTL_MS));
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.run(
            "DELETE FROM oauth_authorizations WHERE created_at_ms < $1",
            &[&cutoff],
        )
        .await?;
        txn.run(
            "INSERT INTO oauth_authorizations (state_hash, created_at_ms, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (state_hash) DO UPDATE SET created_at_ms = EXCLUDED.created_at_ms, doc = EXCLUDED.doc",
            &[&state_hash, &big(pending.created_at_ms), &doc],
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn pending_authorization_link(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingTarget>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT doc FROM oauth_authorizations WHERE state_hash = $1",
                &[&state_hash],
            )
            .await?;
        row.map(|row| {
            decode::<Row>("oauth_authorizations", row.get(0)).map(|r| PendingTarget {
                key: ConnectionKey::new(r.end_user.as_deref(), &r.link_name),
                connect_link: r.connect_link,
            })
        })
        .transpose()
    }

    async fn take_pending_authorization(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingAuthorization<String>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "DELETE FROM oauth_authorizations WHERE state_hash = $1 RETURNING doc",
                &[&state_hash],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let row: Row = decode("oauth_authorizations", row.get(0))?;
        Ok(Some(PendingAuthorization {
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

    async fn pending_authorization_count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .row("SELECT count(*) FROM oauth_authorizations", &[])
            .await?;
        Ok(unbig(row.get(0)))
    }
}
