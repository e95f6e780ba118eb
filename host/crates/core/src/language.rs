//! The languages plugins are written in: what `junction build` builds and
//! what the console shows beside each plugin.

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestSource;

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A cargo crate on the Rust SDK (wit-bindgen).
    Rust,
    /// A Python project on the Python SDK (componentize-py).
    Python,
    /// An ES module project on the JavaScript SDK (componentize-js).
    #[serde(rename = "javascript")]
    JavaScript,
}

impl Language {
    /// The language's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        }
    }

    /// The project file its manifest lives in.
    pub fn manifest_source(self) -> ManifestSource {
        match self {
            Language::Rust => ManifestSource::CargoToml,
            Language::Python => ManifestSource::PyProject,
            Language::JavaScript => ManifestSource::PackageJson,
        }
    }

    /// The language of a project whose manifest lives in `source`.
    pub fn of_source(source: ManifestSource) -> Language {
        match source {
            ManifestSource::CargoToml => Language::Rust,
            ManifestSource::PyProject => Language::Python,
            ManifestSource::PackageJson => Language::JavaScript,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_round_trips_through_its_manifest_source() {
        for language in [Language::Rust, Language::Python, Language::JavaScript] {
            assert_eq!(Language::of_source(language.manifest_source()), language);
        }
        assert_eq!(
            serde_json::to_string(&Language::JavaScript).ok().as_deref(),
            Some("\"javascript\"")
        );
    }
}
