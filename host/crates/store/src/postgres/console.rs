//! Console sessions in PostgreSQL, one row per session keyed by the sha256
//! of its id, so a browser signed in through one host is signed in on all.

use async_trait::async_trait;

use super::{Postgres, Prepared, big, decode, unbig};
use crate::StoreError;
use crate::encoded::encode;
use crate::sessions::{ConsoleFlash, ConsoleRows, ConsoleSession};

fn flash_bytes(flash: Option<&ConsoleFlash>) -> Result<Option<Vec<u8>>, StoreError> {
    flash.map(|f| encode("console_sessions", f)).transpose()
}

fn flash_of(bytes: Option<Vec<u8>>) -> Result<Option<ConsoleFlash>, StoreError> {
    bytes.map(|b| decode("console_sessions", &b)).transpose()
}

#[async_trait]
impl ConsoleRows for Postgres {
    async fn start_console_session(
        &self,
        key: &str,
        session: &ConsoleSession,
        idle_before_ms: u64,
        max: u64,
    ) -> Result<(), StoreError> {
        let flash = flash_bytes(session.flash.as_ref())?;
        let keep = big(max.saturating_sub(1));
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.run(
            "DELETE FROM console_sessions WHERE last_seen_ms < $1",
            &[&big(idle_before_ms)],
        )
        .await?;
        txn.run(
            "DELETE FROM console_sessions WHERE key IN ( \
               SELECT key FROM console_sessions ORDER BY last_seen_ms DESC OFFSET $1)",
            &[&keep],
        )
        .await?;
        txn.run(
            "INSERT INTO console_sessions (key, created_at_ms, last_seen_ms, flash) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
             created_at_ms = EXCLUDED.created_at_ms, last_seen_ms = EXCLUDED.last_seen_ms, \
             flash = EXCLUDED.flash",
            &[
                &key,
                &big(session.created_at_ms),
                &big(session.last_seen_ms),
                &flash,
            ],
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn console_session(&self, key: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT created_at_ms, last_seen_ms, flash FROM console_sessions WHERE key = $1",
                &[&key],
            )
            .await?;
        row.map(|row| {
            Ok(ConsoleSession {
                created_at_ms: unbig(row.get(0)),
                last_seen_ms: unbig(row.get(1)),
                flash: flash_of(row.get(2))?,
            })
        })
        .transpose()
    }

    async fn touch_console_session(&self, key: &str, at_ms: u64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = client
            .run(
                "UPDATE console_sessions SET last_seen_ms = GREATEST(last_seen_ms, $2) WHERE key = $1",
                &[&key, &big(at_ms)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn swap_console_flash(
        &self,
        key: &str,
        flash: Option<&ConsoleFlash>,
    ) -> Result<Option<ConsoleFlash>, StoreError> {
        let new = flash_bytes(flash)?;
        let client = self.client().await?;
        // The old value comes from the row locked by the update itself, so
        // two takes at once cannot both see the message.
        let row = client
            .maybe_row(
                "UPDATE console_sessions AS s SET flash = $2 \
                 FROM (SELECT key, flash FROM console_sessions WHERE key = $1 FOR UPDATE) AS old \
                 WHERE s.key = old.key AND (old.flash IS NOT NULL OR $2::bytea IS NOT NULL) \
                 RETURNING old.flash",
                &[&key, &new],
            )
            .await?;
        flash_of(row.and_then(|row| row.get(0)))
    }

    async fn end_console_session(&self, key: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .run("DELETE FROM console_sessions WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn end_console_sessions(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client.run("DELETE FROM console_sessions", &[]).await
    }
}
