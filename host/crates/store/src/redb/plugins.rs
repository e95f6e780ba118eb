//! Deployed plugins in redb: one record per name with its versions,
//! component bytes stored once per sha256, and precompiled artifacts keyed
//! by (sha256, compatibility hash) stored with their sealed tags.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Redb, RedbBackend, db};
use crate::StoreError;
use crate::plugins::{NewVersion, PluginRecord};

pub(super) const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
pub(super) const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
/// (sha256, compatibility hash) → (sealed tag, artifact bytes).
pub(super) const ARTIFACTS: TableDefinition<(&str, &str), (&str, &[u8])> =
    TableDefinition::new("artifacts");

fn decode_record(name: &str, bytes: &[u8]) -> Result<PluginRecord, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("plugins/{name}"), e.to_string()))
}

fn encode_record(record: &PluginRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record)
        .map_err(|e| StoreError::Corrupt(format!("plugins/{}", record.name), e.to_string()))
}

/// Every plugin, as of the read transaction `txn`.
pub(super) fn read_plugins(txn: &redb::ReadTransaction) -> Result<Vec<PluginRecord>, StoreError> {
    let table = txn.open_table(PLUGINS).map_err(db)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(db)? {
        let (name, bytes) = row.map_err(db)?;
        out.push(decode_record(name.value(), bytes.value())?);
    }
    Ok(out)
}

impl Redb {
    /// Stores a new version of `name` (creating the plugin) and makes it
    /// active, in one transaction: concurrent uploads get distinct versions.
    fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
        tag: &str,
    ) -> Result<PluginRecord, StoreError> {
        let now = junction_core::now_ms();
        let txn = self.db.begin_write().map_err(db)?;
        let record = {
            let mut plugins = txn.open_table(PLUGINS).map_err(db)?;
            let mut record = match plugins.get(name).map_err(db)? {
                Some(bytes) => decode_record(name, bytes.value())?,
                None => PluginRecord::empty(name, now),
            };
            let (sha256, component) = (new.sha256, new.component);
            let (compatibility, artifact) = (new.compatibility, new.artifact);
            record.add_version(new, now);
            plugins
                .insert(name, encode_record(&record)?.as_slice())
                .map_err(db)?;

            let mut components = txn.open_table(COMPONENTS).map_err(db)?;
            if components.get(sha256).map_err(db)?.is_none() {
                components.insert(sha256, component).map_err(db)?;
            }
            let mut artifacts = txn.open_table(ARTIFACTS).map_err(db)?;
            artifacts
                .insert((sha256, compatibility), (tag, artifact))
                .map_err(db)?;
            record
        };
        txn.commit().map_err(db)?;
        Ok(record)
    }

    /// The plugin called `name`.
    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(PLUGINS).map_err(db)?;
        match table.get(name).map_err(db)? {
            Some(bytes) => decode_record(name, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every plugin, by name.
    fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        read_plugins(&self.db.begin_read().map_err(db)?)
    }

    /// Makes `version` of `name` active again.
    fn activate_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<PluginRecord, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let record = {
            let mut plugins = txn.open_table(PLUGINS).map_err(db)?;
            let mut record = match plugins.get(name).map_err(db)? {
                Some(bytes) => decode_record(name, bytes.value())?,
                None => {
                    return Err(StoreError::NotFound {
                        kind: "plugin",
                        name: name.into(),
                    });
                }
            };
            if record.version(version).is_none() {
                return Err(StoreError::NotFound {
                    kind: "version of plugin",
                    name: format!("{name}@{version}"),
                });
            }
            record.active_version = version;
            record.updated_at_ms = junction_core::now_ms();
            plugins
                .insert(name, encode_record(&record)?.as_slice())
                .map_err(db)?;
            record
        };
        txn.commit().map_err(db)?;
        Ok(record)
    }

    /// Removes `name`: its record, the components and artifacts no other
    /// plugin uses, and its kv namespace. Returns the removed record.
    fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let record = {
            let mut plugins = txn.open_table(PLUGINS).map_err(db)?;
            let record = match plugins.remove(name).map_err(db)? {
                Some(bytes) => decode_record(name, bytes.value())?,
                None => {
                    return Err(StoreError::NotFound {
                        kind: "plugin",
                        name: name.into(),
                    });
                }
            };
            let mut still_used = std::collections::HashSet::new();
            for row in plugins.iter().map_err(db)? {
                let (other, bytes) = row.map_err(db)?;
                for version in decode_record(other.value(), bytes.value())?.versions {
                    still_used.insert(version.sha256);
                }
            }
            let mut components = txn.open_table(COMPONENTS).map_err(db)?;
            let mut artifacts = txn.open_table(ARTIFACTS).map_err(db)?;
            for version in &record.versions {
                if still_used.contains(&version.sha256) {
                    continue;
                }
                components.remove(version.sha256.as_str()).map_err(db)?;
                let sha = version.sha256.as_str();
                artifacts
                    .retain_in((sha, "")..=(sha, "\u{10FFFF}"), |_, _| false)
                    .map_err(db)?;
            }
            super::kv::forget_in(&txn, name)?;
            record
        };
        txn.commit().map_err(db)?;
        Ok(record)
    }

    /// The component with this sha256.
    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(COMPONENTS).map_err(db)?;
        Ok(table
            .get(sha256)
            .map_err(db)?
            .map(|bytes| bytes.value().to_vec()))
    }

    fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(ARTIFACTS).map_err(db)?;
        let Some(row) = table.get((sha256, compatibility)).map_err(db)? else {
            return Ok(None);
        };
        let (tag, bytes) = row.value();
        Ok(Some((tag.to_owned(), bytes.to_vec())))
    }

    /// Stores an artifact precompiled from `sha256` (after a wasmtime
    /// upgrade), dropping artifacts of other engines for the same component.
    fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        tag: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut artifacts = txn.open_table(ARTIFACTS).map_err(db)?;
            artifacts
                .retain_in((sha256, "")..=(sha256, "\u{10FFFF}"), |_, _| false)
                .map_err(db)?;
            artifacts
                .insert((sha256, compatibility), (tag, artifact))
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl crate::plugins::PluginRows for RedbBackend {
    async fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
        artifact_tag: &str,
    ) -> Result<PluginRecord, StoreError> {
        let name = name.to_owned();
        let tag = artifact_tag.to_owned();
        let component = new.component.to_vec();
        let sha256 = new.sha256.to_owned();
        let compatibility = new.compatibility.to_owned();
        let artifact = new.artifact.to_vec();
        let (language, manifest, granted, missing) = (
            new.language,
            new.manifest,
            new.granted_connections,
            new.missing_connections,
        );
        self.run(move |redb| {
            redb.add_plugin_version(
                &name,
                NewVersion {
                    component: &component,
                    sha256: &sha256,
                    compatibility: &compatibility,
                    artifact: &artifact,
                    language,
                    manifest,
                    granted_connections: granted,
                    missing_connections: missing,
                },
                &tag,
            )
        })
        .await
    }

    async fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let name = name.to_owned();
        self.run(move |redb| redb.plugin(&name)).await
    }

    async fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.run(|redb| redb.plugins()).await
    }

    async fn activate_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<PluginRecord, StoreError> {
        let name = name.to_owned();
        self.run(move |redb| redb.activate_plugin_version(&name, version))
            .await
    }

    async fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError> {
        let name = name.to_owned();
        self.run(move |redb| redb.delete_plugin(&name)).await
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sha256 = sha256.to_owned();
        self.run(move |redb| redb.component(&sha256)).await
    }

    async fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let (sha256, compatibility) = (sha256.to_owned(), compatibility.to_owned());
        self.run(move |redb| redb.artifact(&sha256, &compatibility))
            .await
    }

    async fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact_tag: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let (sha256, compatibility) = (sha256.to_owned(), compatibility.to_owned());
        let (tag, artifact) = (artifact_tag.to_owned(), artifact.to_vec());
        self.run(move |redb| redb.put_artifact(&sha256, &compatibility, &tag, &artifact))
            .await
    }
}
