//! Deployed plugins: a record per name with its versions, the component
//! bytes stored once per sha256, and precompiled artifacts keyed by sha256
//! plus the engine's compatibility hash. A backend stores each artifact with
//! its tag (sealed above it, by [`crate::Store`]) and hands both back; only
//! the sealing layer can tell whether the tag is genuine.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use junction_core::{Language, Manifest};

/// One uploaded version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginVersion {
    /// 1, 2, ... in upload order.
    pub version: u32,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The language it was written in, when its component says (versions
    /// uploaded before languages were recorded have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
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
    /// A plugin with no version yet, about to get its first.
    pub fn empty(name: &str, now: u64) -> Self {
        PluginRecord {
            name: name.to_owned(),
            active_version: 0,
            versions: Vec::new(),
            created_at_ms: now,
            updated_at_ms: now,
        }
    }

    /// Appends `new` as the next version (one past the highest, none
    /// skipped or repeated) and makes it active; returns its number. Every
    /// backend calls this under its write lock on the record.
    pub fn add_version(&mut self, new: NewVersion<'_>, now: u64) -> u32 {
        let number = self.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        self.versions.push(PluginVersion {
            version: number,
            sha256: new.sha256.to_owned(),
            size: new.component.len() as u64,
            language: new.language,
            manifest: new.manifest,
            granted_connections: new.granted_connections,
            missing_connections: new.missing_connections,
            created_at_ms: now,
        });
        self.active_version = number;
        self.updated_at_ms = now;
        number
    }

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
    /// The language the component was written in, if known.
    pub language: Option<Language>,
    /// What the plugin asked for.
    pub manifest: Manifest,
    /// What it was granted.
    pub granted_connections: Vec<String>,
    /// What it asked for and did not get.
    pub missing_connections: Vec<String>,
}

/// Plugins, their components and artifacts.
#[async_trait]
pub trait PluginRows: Send + Sync {
    /// Stores a new version of `name` (creating the plugin) and makes it
    /// active, in one transaction: concurrent uploads get distinct version
    /// numbers, 1, 2, ... with none skipped or repeated.
    async fn add_plugin_version(
        &self,
        name: &str,
        new: NewVersion<'_>,
        artifact_tag: &str,
    ) -> Result<PluginRecord, StoreError>;
    /// The plugin called `name`.
    async fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError>;
    /// Every plugin, by name.
    async fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;
    /// Makes `version` of `name` active again.
    async fn activate_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<PluginRecord, StoreError>;
    /// Removes `name`: its record, the components and artifacts no other
    /// plugin uses, and its kv namespace. Returns the removed record.
    async fn delete_plugin(&self, name: &str) -> Result<PluginRecord, StoreError>;
    /// The component with this sha256.
    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The artifact of `sha256` for this engine, with its sealed tag.
    async fn artifact(
        &self,
        sha256: &str,
        compatibility: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Stores an artifact with its sealed tag, dropping the artifacts of
    /// other engines for the same component.
    async fn put_artifact(
        &self,
        sha256: &str,
        compatibility: &str,
        artifact_tag: &str,
        artifact: &[u8],
    ) -> Result<(), StoreError>;
}
