//! Plugins in PostgreSQL: a row per plugin holding its record (every
//! version) as JSON, the components by sha256 and the precompiled
//! artifacts by sha256 and engine, each artifact with its sealed tag.
//! An upload locks the plugin's row, so uploads racing on several hosts
//! still get 1, 2, ... in turn.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{Postgres, Prepared, decode};
use crate::StoreError;
use crate::encoded::encode;
use crate::plugins::{NewVersion, PluginRecord};

fn decode_record(name: &str, bytes: &[u8]) -> Result<PluginRecord, StoreError> {
    decode(&format!("plugins/{name}"), bytes)
}

/// Every plugin, by name, through `client` (a transaction or not).
pub(super) async fn all(client: &impl Prepared) -> Result<Vec<PluginRecord>, StoreError> {
    let rows = client
        .rows("SELECT name, doc FROM plugins ORDER BY name", &[])
        .await?;
    rows.iter()
        .map(|row| decode_record(row.get(0), row.get(1)))
        .collect()
}

#[async_trait]
impl crate::plugins::PluginRows for Postgres {
    async fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
        artifact_tag: &str,
    ) -> Result<PluginRecord, StoreError> {
        let now = junction_core::now_ms();
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        // A placeholder makes the row exist to be locked; a racing upload
        // of a new name waits here for the first to commit.
        let placeholder = encode(&format!("plugins/{name}"), &PluginRecord::empty(name, now))?;
        txn.run(
            "INSERT INTO plugins (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &placeholder],
        )
        .await?;
        let row = txn
            .row(
                "SELECT doc FROM plugins WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?;
        let mut record = decode_record(name, row.get(0))?;
        let (sha256, component) = (new.sha256, new.component);
        let (compatibility, artifact) = (new.compatibility, new.artifact);
        record.add_version(new, now);
        let doc = encode(&format!("plugins/{name}"), &record)?;
        txn.run(
            "UPDATE plugins SET doc = $2 WHERE name = $1",
            &[&name, &doc],
        )
        .await?;
        txn.run(
            "INSERT INTO components (sha256, bytes) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &component],
        )
        .await?;
        txn.run(
            "INSERT INTO artifacts (sha256, compatibility, tag, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256, compatibility) DO UPDATE SET tag = EXCLUDED.tag, bytes = EXCLUDED.bytes",
            &[&sha256, &compatibility, &artifact_tag, &artifact],
        )
        .await?;
        txn.commit().await?;
        Ok(record)
    }

    async fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT doc FROM plugins WHERE name = $1", &[&name])
            .await?;
        row.map(|row| decode_record(name, row.get(0))).transpose()
    }

    async fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let client = self.client().await?;
        all(&client).await
    }

    async fn activate_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<PluginRecord, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(row) = txn
            .maybe_row(
                "SELECT doc FROM plugins WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?
        else {
            return Err(StoreError::NotFound {
                kind: "plugin",
                name: name.into(),
            });
        };
        let mut record = decode_record(name, row.get(0))?;
        if record.version(version).is_none() {
            return Err(StoreError::NotFound {
                kind: "version of plugin",
                name: format!("{name}@{version}"),
            });
        }
        record.active_version = version;
        record.updated_at_ms = junction_core::now_ms();
        let doc = encode(&format!("plugins/{name}"), &record)?;
        txn.run(
            "UPDATE plugins SET doc = $2 WHERE name = $1",
            &[&name, &doc],
        )
        .await?;
        txn.commit().await?;
        Ok(record)
    }

    async fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        let Some(row) = txn
            .maybe_row(
                "DELETE FROM plugins WHERE name = $1 RETURNING doc",
                &[&name],
            )
            .await?
        else {
            return Err(StoreError::NotFound {
                kind: "plugin",
                name: name.into(),
            });
        };
        let record = decode_record(name, row.get(0))?;
        let still_used: HashSet<String> = all(&txn)
            .await?
            .into_iter()
            .flat_map(|other| other.versions.into_iter().map(|v| v.sha256))
            .collect();
        let unused: Vec<String> = record
            .versions
            .iter()
            .map(|v| v.sha256.clone())
            .filter(|sha| !still_used.contains(sha))
            .collect();
        txn.run("DELETE FROM components WHERE sha256 = ANY($1)", &[&unused])
            .await?;
        txn.run("DELETE FROM artifacts WHERE sha256 = ANY($1)", &[&unused])
            .await?;
        super::kv::forget_in(&txn, name).await?;
        txn.commit().await?;
        Ok(record)
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row("SELECT bytes FROM components WHERE sha256 = $1", &[&sha256])
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    async fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .maybe_row(
                "SELECT tag, bytes FROM artifacts WHERE sha256 = $1 AND compatibility = $2",
                &[&sha256, &compatibility],
            )
            .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact_tag: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        txn.run(
            "DELETE FROM artifacts WHERE sha256 = $1 AND compatibility <> $2",
            &[&sha256, &compatibility],
        )
        .await?;
        txn.run(
            "INSERT INTO artifacts (sha256, compatibility, tag, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256, compatibility) DO UPDATE SET tag = EXCLUDED.tag, bytes = EXCLUDED.bytes",
            &[&sha256, &compatibility, &artifact_tag, &artifact],
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
