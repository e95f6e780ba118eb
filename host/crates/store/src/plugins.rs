//! Deployed plugins: one record per name with its versions, component bytes
//! stored once per sha256, and precompiled artifacts keyed by sha256 plus the
//! engine's compatibility hash. Each artifact carries a tag sealed with the
//! master key, so the host only ever deserializes machine code it produced.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Secret, Store, StoreError, db};
use junction_core::{Manifest, validate_plugin_name};

pub(super) const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
pub(super) const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
/// (sha256, compatibility hash) → (sealed tag, artifact bytes).
pub(super) const ARTIFACTS: TableDefinition<(&str, &str), (&str, &[u8])> =
    TableDefinition::new("artifacts");

/// One uploaded version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginVersion {
    /// 1, 2, ... in upload order.
    pub version: u32,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// What the plugin asked for.
    #[schema(value_type = Object)]
    pub manifest: Manifest,
    /// Connections it may use.
    pub granted_connections: Vec<String>,
    /// Connections it asked for that did not exist (or were not granted) at upload.
    pub missing_connections: Vec<String>,
    /// When it was uploaded.
    pub created_at_ms: u64,
}

/// A plugin and every version uploaded under its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// Lower-case letters, digits and `-`, at most 63.
    pub name: String,
    /// The version that runs.
    pub active_version: u32,
    /// Oldest first.
    pub versions: Vec<PluginVersion>,
    /// When the first version was uploaded.
    pub created_at_ms: u64,
    /// When a version was last uploaded or activated.
    pub updated_at_ms: u64,
}

impl PluginRecord {
    /// The active version.
    pub fn active(&self) -> Option<&PluginVersion> {
        self.version(self.active_version)
    }

    /// Version `number`.
    pub fn version(&self, number: u32) -> Option<&PluginVersion> {
        self.versions.iter().find(|v| v.version == number)
    }
}

/// What a new upload stores, apart from the version number the store assigns.
pub struct NewVersion<'a> {
    /// The component.
    pub component: &'a [u8],
    /// Its sha256, hex.
    pub sha256: &'a str,
    /// The engine's compatibility hash, hex.
    pub compatibility: &'a str,
    /// The precompiled artifact.
    pub artifact: &'a [u8],
    /// What the plugin asked for.
    pub manifest: Manifest,
    /// What it was granted.
    pub granted_connections: Vec<String>,
    /// What it asked for and did not get.
    pub missing_connections: Vec<String>,
}

fn artifact_aad(sha256: &str, compatibility: &str) -> String {
    format!("artifacts/{sha256}/{compatibility}")
}

/// Re-seals the artifact tags not sealed with `cipher`'s primary key.
pub(super) fn reseal_artifacts_in(
    txn: &redb::WriteTransaction,
    cipher: &super::Cipher,
) -> Result<usize, StoreError> {
    let mut table = txn.open_table(ARTIFACTS).map_err(db)?;
    let mut stale = Vec::new();
    for row in table.iter().map_err(db)? {
        let (key, value) = row.map_err(db)?;
        let (sha, compatibility) = key.value();
        let (tag, _) = value.value();
        if super::crypto::sealed_key_id(tag) != Some(cipher.key_id()) {
            let aad = artifact_aad(sha, compatibility);
            let tag = cipher.seal(&cipher.open(tag, &aad)?, &aad)?;
            stale.push((sha.to_owned(), compatibility.to_owned(), tag));
        }
    }
    for (sha, compatibility, tag) in &stale {
        // Read again for the bytes: holding every artifact at once would
        // cost their total size in memory.
        let bytes = match table
            .get((sha.as_str(), compatibility.as_str()))
            .map_err(db)?
        {
            Some(row) => row.value().1.to_vec(),
            None => continue,
        };
        table
            .insert(
                (sha.as_str(), compatibility.as_str()),
                (tag.as_str(), bytes.as_slice()),
            )
            .map_err(db)?;
    }
    Ok(stale.len())
}

fn decode_record(name: &str, bytes: &[u8]) -> Result<PluginRecord, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("plugins/{name}"), e.to_string()))
}

fn encode_record(record: &PluginRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record)
        .map_err(|e| StoreError::Corrupt(format!("plugins/{}", record.name), e.to_string()))
}

impl Store {
    fn artifact_tag(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact: &[u8],
    ) -> Result<String, StoreError> {
        let digest = hex::encode(Sha256::digest(artifact));
        Ok(self
            .cipher()
            .seal(&Secret::new(digest), &artifact_aad(sha256, compatibility))?)
    }

    /// Stores a new version of `name` (creating the plugin) and makes it
    /// active, in one transaction: concurrent uploads get distinct versions.
    pub fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
    ) -> Result<PluginRecord, StoreError> {
        validate_plugin_name(name).map_err(StoreError::Invalid)?;
        let tag = self.artifact_tag(new.sha256, new.compatibility, new.artifact)?;
        let now = super::now_ms();
        let txn = self.db.begin_write().map_err(db)?;
        let record = {
            let mut plugins = txn.open_table(PLUGINS).map_err(db)?;
            let mut record = match plugins.get(name).map_err(db)? {
                Some(bytes) => decode_record(name, bytes.value())?,
                None => PluginRecord {
                    name: name.to_owned(),
                    active_version: 0,
                    versions: Vec::new(),
                    created_at_ms: now,
                    updated_at_ms: now,
                },
            };
            let number = record.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
            record.versions.push(PluginVersion {
                version: number,
                sha256: new.sha256.to_owned(),
                size: new.component.len() as u64,
                manifest: new.manifest,
                granted_connections: new.granted_connections,
                missing_connections: new.missing_connections,
                created_at_ms: now,
            });
            record.active_version = number;
            record.updated_at_ms = now;
            plugins
                .insert(name, encode_record(&record)?.as_slice())
                .map_err(db)?;

            let mut components = txn.open_table(COMPONENTS).map_err(db)?;
            if components.get(new.sha256).map_err(db)?.is_none() {
                components.insert(new.sha256, new.component).map_err(db)?;
            }
            let mut artifacts = txn.open_table(ARTIFACTS).map_err(db)?;
            artifacts
                .insert(
                    (new.sha256, new.compatibility),
                    (tag.as_str(), new.artifact),
                )
                .map_err(db)?;
            record
        };
        txn.commit().map_err(db)?;
        Ok(record)
    }

    /// The plugin called `name`.
    pub fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(PLUGINS).map_err(db)?;
        match table.get(name).map_err(db)? {
            Some(bytes) => decode_record(name, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(PLUGINS).map_err(db)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db)? {
            let (name, bytes) = row.map_err(db)?;
            out.push(decode_record(name.value(), bytes.value())?);
        }
        Ok(out)
    }

    /// Makes `version` of `name` active again.
    pub fn activate_plugin_version(
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
            record.updated_at_ms = super::now_ms();
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
    pub fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError> {
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
    pub fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(COMPONENTS).map_err(db)?;
        Ok(table
            .get(sha256)
            .map_err(db)?
            .map(|bytes| bytes.value().to_vec()))
    }

    /// The artifact precompiled from `sha256` by an engine with this
    /// compatibility hash, if its tag proves this host produced it.
    /// A tag that does not verify is reported, not trusted.
    pub fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(ARTIFACTS).map_err(db)?;
        let Some(row) = table.get((sha256, compatibility)).map_err(db)? else {
            return Ok(None);
        };
        let (tag, bytes) = row.value();
        let expected = self
            .cipher()
            .open(tag, &artifact_aad(sha256, compatibility))?;
        let actual = hex::encode(Sha256::digest(bytes));
        if expected.expose() != actual {
            return Err(StoreError::Corrupt(
                format!("artifacts/{sha256}"),
                "the artifact does not match its tag".into(),
            ));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Stores an artifact precompiled from `sha256` (after a wasmtime
    /// upgrade), dropping artifacts of other engines for the same component.
    pub fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError> {
        let tag = self.artifact_tag(sha256, compatibility, artifact)?;
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut artifacts = txn.open_table(ARTIFACTS).map_err(db)?;
            artifacts
                .retain_in((sha256, "")..=(sha256, "\u{10FFFF}"), |_, _| false)
                .map_err(db)?;
            artifacts
                .insert((sha256, compatibility), (tag.as_str(), artifact))
                .map_err(db)?;
        }
        txn.commit().map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_version<'a>(component: &'a [u8], sha: &'a str, artifact: &'a [u8]) -> NewVersion<'a> {
        NewVersion {
            component,
            sha256: sha,
            compatibility: "engine-a",
            artifact,
            manifest: Manifest::default(),
            granted_connections: vec![],
            missing_connections: vec![],
        }
    }

    /// Writes `bytes` as the artifact of `target`, under the tag stored for
    /// `tag_of`: what someone editing the redb file by hand could do.
    fn forge_artifact(store: &Store, tag_of: &str, target: &str, bytes: &[u8]) {
        let txn = store.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ARTIFACTS).unwrap();
            let tag = table
                .get((tag_of, "engine-a"))
                .unwrap()
                .unwrap()
                .value()
                .0
                .to_owned();
            table
                .insert((target, "engine-a"), (tag.as_str(), bytes))
                .unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn artifacts_open_only_with_their_tag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = store
            .add_plugin_version("demo", new_version(b"component", "sha-1", b"machine code"))
            .unwrap();
        assert_eq!(record.active_version, 1);
        assert_eq!(
            store.artifact("sha-1", "engine-a").unwrap().unwrap(),
            b"machine code"
        );
        assert!(store.artifact("sha-1", "engine-b").unwrap().is_none());

        // Bytes swapped in behind the store's back keep the old tag: refused.
        forge_artifact(&store, "sha-1", "sha-1", b"evil code");
        let err = store.artifact("sha-1", "engine-a").unwrap_err().to_string();
        assert!(err.contains("does not match its tag"), "{err}");

        // A tag made for another component does not open here either.
        store.put_artifact("sha-2", "engine-a", b"other").unwrap();
        forge_artifact(&store, "sha-2", "sha-1", b"other");
        assert!(store.artifact("sha-1", "engine-a").is_err());
    }

    #[test]
    fn versions_rollback_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .add_plugin_version("demo", new_version(b"one", "sha-1", b"a1"))
            .unwrap();
        store
            .add_plugin_version("shared", new_version(b"one", "sha-1", b"a1"))
            .unwrap();
        let record = store
            .add_plugin_version("demo", new_version(b"two", "sha-2", b"a2"))
            .unwrap();
        assert_eq!(record.active_version, 2);
        assert_eq!(record.versions.len(), 2);
        let record = store.activate_plugin_version("demo", 1).unwrap();
        assert_eq!(record.active().unwrap().sha256, "sha-1");
        assert!(store.activate_plugin_version("demo", 7).is_err());
        store.kv_set("demo", "k", b"v").unwrap();
        store.kv_set("demo-2", "k", b"v").unwrap();

        store.delete_plugin("demo").unwrap();
        assert!(store.plugin("demo").unwrap().is_none());
        assert!(store.component("sha-2").unwrap().is_none());
        assert!(store.artifact("sha-2", "engine-a").unwrap().is_none());
        assert!(
            store.component("sha-1").unwrap().is_some(),
            "still used by `shared`"
        );
        assert!(store.kv_get("demo", "k").unwrap().is_none());
        assert!(
            store.kv_get("demo-2", "k").unwrap().is_some(),
            "another namespace"
        );
        assert!(matches!(
            store.delete_plugin("demo"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(
            store
                .add_plugin_version("Bad Name", new_version(b"x", "sha-3", b"a"))
                .is_err()
        );
    }
}
