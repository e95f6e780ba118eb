//! Console sessions in redb, one JSON row per session keyed by the
//! sha256 of its id. Reads take no write lock; a touch is a write, which
//! the console makes at most every few seconds per session.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, corrupt, db};
use crate::StoreError;
use crate::sessions::{ConsoleFlash, ConsoleRows, ConsoleSession};

pub(super) const CONSOLE_SESSIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("console_sessions");

fn decode(bytes: &[u8]) -> Result<ConsoleSession, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("console_sessions", e))
}

fn encode(session: &ConsoleSession) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(session).map_err(|e| corrupt("console_sessions", e))
}

impl Redb {
    fn start_console_session(
        &self,
        key: &str,
        session: &ConsoleSession,
        idle_before_ms: u64,
        max: u64,
    ) -> Result<(), StoreError> {
        let bytes = encode(session)?;
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(CONSOLE_SESSIONS).map_err(db)?;
            table
                .retain(|_, value| decode(value).is_ok_and(|s| s.last_seen_ms >= idle_before_ms))
                .map_err(db)?;
            let mut live: Vec<(u64, String)> = Vec::new();
            for row in table.iter().map_err(db)? {
                let (k, v) = row.map_err(db)?;
                live.push((decode(v.value())?.last_seen_ms, k.value().to_owned()));
            }
            let keep = usize::try_from(max.saturating_sub(1)).unwrap_or(usize::MAX);
            if live.len() > keep {
                live.sort();
                for (_, old) in &live[..live.len() - keep] {
                    table.remove(old.as_str()).map_err(db)?;
                }
            }
            table.insert(key, bytes.as_slice()).map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn console_session(&self, key: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CONSOLE_SESSIONS).map_err(db)?;
        table
            .get(key)
            .map_err(db)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Rewrites the session under `key` with `change`; `None` when it is gone.
    fn change_console_session<T>(
        &self,
        key: &str,
        change: impl FnOnce(&mut ConsoleSession) -> T,
    ) -> Result<Option<T>, StoreError> {
        if self.console_session(key)?.is_none() {
            return Ok(None);
        }
        let txn = self.db.begin_write().map_err(db)?;
        let answer = {
            let mut table = txn.open_table(CONSOLE_SESSIONS).map_err(db)?;
            let found = table
                .get(key)
                .map_err(db)?
                .map(|v| decode(v.value()))
                .transpose()?;
            match found {
                Some(mut session) => {
                    let answer = change(&mut session);
                    table
                        .insert(key, encode(&session)?.as_slice())
                        .map_err(db)?;
                    Some(answer)
                }
                None => None,
            }
        };
        txn.commit().map_err(db)?;
        Ok(answer)
    }

    fn end_console_session(&self, key: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(CONSOLE_SESSIONS)
            .map_err(db)?
            .remove(key)
            .map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(())
    }

    fn end_console_sessions(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let ended = {
            let mut table = txn.open_table(CONSOLE_SESSIONS).map_err(db)?;
            let mut ended = 0;
            table
                .retain(|_, _| {
                    ended += 1;
                    false
                })
                .map_err(db)?;
            ended
        };
        txn.commit().map_err(db)?;
        Ok(ended)
    }
}

#[async_trait]
impl ConsoleRows for RedbBackend {
    async fn start_console_session(
        &self,
        key: &str,
        session: &ConsoleSession,
        idle_before_ms: u64,
        max: u64,
    ) -> Result<(), StoreError> {
        let (key, session) = (key.to_owned(), session.clone());
        self.run(move |redb| redb.start_console_session(&key, &session, idle_before_ms, max))
            .await
    }

    async fn console_session(&self, key: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let key = key.to_owned();
        self.run(move |redb| redb.console_session(&key)).await
    }

    async fn touch_console_session(&self, key: &str, at_ms: u64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.run(move |redb| {
            Ok(redb
                .change_console_session(&key, |s| s.last_seen_ms = s.last_seen_ms.max(at_ms))?
                .is_some())
        })
        .await
    }

    async fn swap_console_flash(
        &self,
        key: &str,
        flash: Option<&ConsoleFlash>,
    ) -> Result<Option<ConsoleFlash>, StoreError> {
        let (key, flash) = (key.to_owned(), flash.cloned());
        self.run(move |redb| {
            if flash.is_none()
                && redb
                    .console_session(&key)?
                    .is_none_or(|s| s.flash.is_none())
            {
                // Nothing to take: no write.
                return Ok(None);
            }
            Ok(redb
                .change_console_session(&key, |s| std::mem::replace(&mut s.flash, flash))?
                .flatten())
        })
        .await
    }

    async fn end_console_session(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |redb| redb.end_console_session(&key)).await
    }

    async fn end_console_sessions(&self) -> Result<u64, StoreError> {
        self.run(|redb| redb.end_console_sessions()).await
    }
}
