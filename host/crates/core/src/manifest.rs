//! The plugin manifest: `[package.metadata.junction]` in a Rust plugin's
//! `Cargo.toml` (the way cargo-component keeps its metadata),
//! `[tool.junction]` in a Python plugin's `pyproject.toml`, `"junction"` in
//! a JavaScript plugin's `package.json` — the same fields in each — or the
//! same fields as JSON when uploaded.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a plugin asks of the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// Link names of the connections it needs.
    #[serde(default)]
    pub connections: Vec<String>,
    /// Of those, the ones whose organisation-wide connection is used when
    /// the execution's end user has none of their own; for every other
    /// link an end user's execution uses only that end user's connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_fallback: Vec<String>,
    /// Origins it may call without credentials (`https://hooks.slack.com`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// When the host runs it; interpreted by the event dispatcher.
    #[serde(default)]
    pub triggers: Vec<serde_json::Value>,
    /// Per-plugin limits, within the operator's ceiling.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// The plugin as a tool for AI agents (served over MCP), when it offers
    /// itself as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolSpec>,
}

/// A plugin's tool: what an agent sees in `tools/list`. A call runs the
/// plugin with the arguments as the event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ToolSpec {
    /// The tool's name (1 to 64 of `A-Z a-z 0-9 _ - .`), unique among plugins.
    pub name: String,
    /// What it does, for the agent choosing it.
    pub description: String,
    /// The JSON Schema of its arguments (an object schema). When absent,
    /// the host asks the plugin at upload (an event of kind
    /// [`TOOL_SCHEMA_KIND`]; the Rust SDK answers with the schema derived
    /// from the type named by `export!(handle, tool_input = T)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
}

/// The event kind the host sends at upload to ask a tool for its input schema.
pub const TOOL_SCHEMA_KIND: &str = "junction.tool-schema";

/// Checks that `schema` is a JSON Schema of an object.
pub fn check_input_schema(schema: &serde_json::Value) -> Result<(), String> {
    let is_object_schema = schema
        .as_object()
        .is_some_and(|schema| schema.get("type").and_then(|t| t.as_str()) == Some("object"));
    if !is_object_schema {
        return Err("tool.input-schema must be a JSON Schema with \"type\": \"object\"".into());
    }
    Ok(())
}

impl ToolSpec {
    /// Checks the name, the description and that the schema describes an object.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(format!(
                "tool.name `{}` must be 1 to 64 of letters, digits, `_`, `-` and `.`",
                self.name
            ));
        }
        if self.description.trim().is_empty() || self.description.len() > 4096 {
            return Err("tool.description must be 1 to 4096 bytes".into());
        }
        match &self.input_schema {
            Some(schema) => check_input_schema(schema),
            None => Ok(()),
        }
    }
}

/// Limits a plugin may set for itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ManifestLimits {
    /// Wall time per execution, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory, in MiB.
    pub memory_mb: Option<u64>,
    /// `invoke-url` calls per execution.
    pub http_calls: Option<u32>,
    /// Outbound calls in flight at once (an `invoke-many` batch's width).
    pub http_concurrency: Option<u32>,
    /// Deliveries of this plugin run at once (the host's global limit still applies).
    pub concurrency: Option<u32>,
    /// What the plugin may keep in kv, in MiB (keys plus values).
    pub kv_mb: Option<u64>,
    /// Keys the plugin may keep in kv.
    pub kv_keys: Option<u64>,
}

/// What can be wrong with a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("{path} is not valid JSON: {message}")]
    PackageJson { path: String, message: String },
    #[error("{table} in {path}: {message}")]
    Invalid {
        table: &'static str,
        path: String,
        message: String,
    },
    #[error("manifest: {0}")]
    Json(String),
}

/// The project file a manifest is read from, one per plugin language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestSource {
    /// `Cargo.toml`, `[package.metadata.junction]`.
    CargoToml,
    /// `pyproject.toml`, `[tool.junction]`.
    PyProject,
    /// `package.json`, `"junction"`.
    PackageJson,
}

impl ManifestSource {
    /// Every source, in the order a project folder is searched.
    pub const ALL: [ManifestSource; 3] = [
        ManifestSource::CargoToml,
        ManifestSource::PyProject,
        ManifestSource::PackageJson,
    ];

    /// The project file's name.
    pub fn file_name(self) -> &'static str {
        match self {
            ManifestSource::CargoToml => "Cargo.toml",
            ManifestSource::PyProject => "pyproject.toml",
            ManifestSource::PackageJson => "package.json",
        }
    }

    /// Where in that file the manifest is, as a reader would write it.
    pub fn table(self) -> &'static str {
        match self {
            ManifestSource::CargoToml => "[package.metadata.junction]",
            ManifestSource::PyProject => "[tool.junction]",
            ManifestSource::PackageJson => "\"junction\" in package.json",
        }
    }

    /// The source a file of this name holds, if any.
    pub fn for_file(path: &Path) -> Option<ManifestSource> {
        let name = path.file_name()?.to_str()?;
        Self::ALL.into_iter().find(|s| s.file_name() == name)
    }
}

impl Manifest {
    /// Reads `[package.metadata.junction]` from a plugin's `Cargo.toml`; a
    /// crate without the table has an empty manifest.
    pub fn from_cargo_toml(path: &Path) -> Result<Self, ManifestError> {
        Self::from_project_file(ManifestSource::CargoToml, path)
    }

    /// Reads the manifest from a project file (`Cargo.toml`,
    /// `pyproject.toml` or `package.json`, told by its name).
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let source = ManifestSource::for_file(path).ok_or_else(|| ManifestError::Read {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a manifest comes from Cargo.toml, pyproject.toml or package.json",
            ),
        })?;
        Self::from_project_file(source, path)
    }

    /// Reads the manifest of `source` from the file at `path`.
    pub fn from_project_file(source: ManifestSource, path: &Path) -> Result<Self, ManifestError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_source_text(source, &text, &shown)
    }

    /// Reads `[package.metadata.junction]` from a `Cargo.toml`'s text;
    /// `shown` names it in errors.
    pub fn from_cargo_toml_text(text: &str, shown: &str) -> Result<Self, ManifestError> {
        Self::from_source_text(ManifestSource::CargoToml, text, shown)
    }

    /// Reads the manifest from a project file's text; a file without the
    /// table (or key) has an empty manifest. `shown` names it in errors.
    pub fn from_source_text(
        source: ManifestSource,
        text: &str,
        shown: &str,
    ) -> Result<Self, ManifestError> {
        let invalid = |message: String| ManifestError::Invalid {
            table: source.table(),
            path: shown.to_owned(),
            message,
        };
        let manifest: Manifest = match source {
            ManifestSource::CargoToml | ManifestSource::PyProject => {
                let doc: toml::Table = toml::from_str(text).map_err(|e| ManifestError::Toml {
                    path: shown.to_owned(),
                    message: e.to_string(),
                })?;
                let table = match source {
                    ManifestSource::CargoToml => doc
                        .get("package")
                        .and_then(|p| p.get("metadata"))
                        .and_then(|m| m.get("junction")),
                    _ => doc.get("tool").and_then(|t| t.get("junction")),
                };
                let Some(table) = table else {
                    return Ok(Manifest::default());
                };
                table
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| invalid(e.to_string()))?
            }
            ManifestSource::PackageJson => {
                let doc: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| ManifestError::PackageJson {
                        path: shown.to_owned(),
                        message: e.to_string(),
                    })?;
                let Some(value) = doc.get("junction") else {
                    return Ok(Manifest::default());
                };
                serde_path_to_error::deserialize(value.clone()).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." {
                        invalid(inner.to_string())
                    } else {
                        invalid(format!("`{path}`: {inner}"))
                    }
                })?
            }
        };
        manifest.validate().map_err(invalid)?;
        Ok(manifest)
    }

    /// Reads a manifest from text that may be any project file or the JSON
    /// form, told by its content: JSON with a `"name"` or `"junction"` key
    /// is a `package.json`, other JSON the manifest itself; TOML with a
    /// `[project]` or `[tool.junction]` table is a `pyproject.toml`, other
    /// TOML a `Cargo.toml`. For uploads that come without a file name.
    pub fn from_project_text(text: &str, shown: &str) -> Result<Self, ManifestError> {
        let text = text.trim();
        if text.starts_with('{') {
            let package_json = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .is_some_and(|v| v.get("junction").is_some() || v.get("name").is_some());
            return if package_json {
                Self::from_source_text(ManifestSource::PackageJson, text, shown)
            } else {
                Self::from_json(text)
            };
        }
        let pyproject = toml::from_str::<toml::Table>(text).ok().is_some_and(|doc| {
            doc.contains_key("project") || doc.get("tool").and_then(|t| t.get("junction")).is_some()
        });
        let source = if pyproject {
            ManifestSource::PyProject
        } else {
            ManifestSource::CargoToml
        };
        Self::from_source_text(source, text, shown)
    }

    /// Parses the JSON form sent with an upload.
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        // The error names the field's path (`limits.memory-mb`), not just a column.
        let mut json = serde_json::Deserializer::from_str(text);
        let manifest: Manifest = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ManifestError::Json(inner.to_string())
            } else {
                ManifestError::Json(format!("`{path}`: {inner}"))
            }
        })?;
        manifest.validate().map_err(ManifestError::Json)?;
        Ok(manifest)
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        for link in &self.connections {
            crate::model::validate_link_name(link).map_err(|e| format!("connections: {e}"))?;
        }
        for link in &self.org_fallback {
            if !self.connections.contains(link) {
                return Err(format!(
                    "org-fallback: `{link}` is not among the plugin's connections; add it to connections"
                ));
            }
        }
        for host in &self.allowed_hosts {
            crate::origin::HostPattern::parse(host).map_err(|e| format!("allowed-hosts: {e}"))?;
        }
        for (i, trigger) in self.triggers.iter().enumerate() {
            crate::trigger::Trigger::parse(trigger).map_err(|e| format!("triggers[{i}]: {e}"))?;
        }
        if let Some(tool) = &self.tool {
            tool.validate()?;
        }
        if self.limits.timeout_ms == Some(0) {
            return Err("limits.timeout-ms must be above 0".into());
        }
        if self.limits.memory_mb == Some(0) {
            return Err("limits.memory-mb must be above 0".into());
        }
        if self.limits.http_concurrency == Some(0) {
            return Err("limits.http-concurrency must be above 0".into());
        }
        if let Some(n) = self.limits.concurrency
            && !(1..=1024).contains(&n)
        {
            return Err(format!("limits.concurrency {n} must be from 1 to 1024"));
        }
        Ok(())
    }

    /// The manifest's limits, each missing one taken from `defaults`, each
    /// checked against `ceiling`.
    pub fn resolve_limits(
        &self,
        defaults: &crate::limits::Limits,
        ceiling: &crate::limits::Limits,
    ) -> Result<crate::limits::Limits, String> {
        let mut limits = defaults.clone();
        if let Some(ms) = self.limits.timeout_ms {
            limits.timeout = Duration::from_millis(ms);
        }
        if let Some(mb) = self.limits.memory_mb {
            limits.memory_bytes =
                usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        }
        if let Some(calls) = self.limits.http_calls {
            limits.http_calls = calls;
        }
        if let Some(width) = self.limits.http_concurrency {
            limits.http_concurrency = usize::try_from(width).unwrap_or(usize::MAX);
        }
        if let Some(mb) = self.limits.kv_mb {
            limits.kv_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(keys) = self.limits.kv_keys {
            limits.kv_keys = keys;
        }
        let mib = |bytes: u64| bytes / (1024 * 1024);
        let over = [
            (
                "kv-mb",
                mib(limits.kv_bytes),
                mib(ceiling.kv_bytes),
                limits.kv_bytes > ceiling.kv_bytes,
                " MiB",
            ),
            (
                "kv-keys",
                limits.kv_keys,
                ceiling.kv_keys,
                limits.kv_keys > ceiling.kv_keys,
                "",
            ),
            (
                "timeout-ms",
                limits.timeout.as_millis() as u64,
                ceiling.timeout.as_millis() as u64,
                limits.timeout > ceiling.timeout,
                " ms",
            ),
            (
                "memory-mb",
                mib(limits.memory_bytes as u64),
                mib(ceiling.memory_bytes as u64),
                limits.memory_bytes > ceiling.memory_bytes,
                " MiB",
            ),
            (
                "http-calls",
                u64::from(limits.http_calls),
                u64::from(ceiling.http_calls),
                limits.http_calls > ceiling.http_calls,
                "",
            ),
            (
                "http-concurrency",
                limits.http_concurrency as u64,
                ceiling.http_concurrency as u64,
                limits.http_concurrency > ceiling.http_concurrency,
                "",
            ),
        ];
        if let Some((field, asked, most, _, unit)) = over.into_iter().find(|o| o.3) {
            return Err(format!(
                "limits.{field} {asked} is above the host's ceiling of {most}{unit}"
            ));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_needs_a_name_a_description_and_an_object_schema() {
        let tool = |name: &str, description: &str, schema: serde_json::Value| Manifest {
            tool: Some(ToolSpec {
                name: name.into(),
                description: description.into(),
                input_schema: Some(schema),
            }),
            ..Manifest::default()
        };
        let object = serde_json::json!({"type": "object"});
        assert!(
            tool("sync_audience", "Syncs", object.clone())
                .validate()
                .is_ok()
        );
        for (bad, says) in [
            (tool("", "Syncs", object.clone()), "tool.name"),
            (tool("has space", "Syncs", object.clone()), "tool.name"),
            (tool(&"x".repeat(65), "Syncs", object.clone()), "tool.name"),
            (tool("sync", " ", object.clone()), "tool.description"),
            (
                tool("sync", "Syncs", serde_json::json!({"type": "string"})),
                "tool.input-schema",
            ),
            (
                tool("sync", "Syncs", serde_json::json!([])),
                "tool.input-schema",
            ),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        let parsed: Manifest = serde_json::from_value(serde_json::json!({
            "tool": {"name": "t", "description": "d", "input-schema": {"type": "object"}}
        }))
        .unwrap();
        assert_eq!(parsed.tool.unwrap().name, "t");
        let stored = serde_json::to_value(Manifest::default()).unwrap();
        assert!(
            stored.get("tool").is_none(),
            "a manifest without a tool is stored as before"
        );
    }

    #[test]
    fn reads_the_cargo_metadata_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Cargo.toml");
        std::fs::write(
            &path,
            r#"
[package]
name = "x"
[package.metadata.junction]
connections = ["mailchimp", "zohocrm"]
allowed-hosts = ["https://hooks.slack.com"]
triggers = [{ event = "campaign.sync" }]
limits = { timeout-ms = 30000, memory-mb = 64, http-calls = 10 }
"#,
        )
        .unwrap();
        let manifest = Manifest::from_cargo_toml(&path).unwrap();
        assert_eq!(manifest.connections, ["mailchimp", "zohocrm"]);
        assert_eq!(manifest.limits.memory_mb, Some(64));
        assert_eq!(manifest.triggers.len(), 1);
    }

    #[test]
    fn every_project_file_holds_the_same_fields() {
        let cargo = r#"
[package]
name = "x"
[package.metadata.junction]
connections = ["mailchimp"]
triggers = [{ event = "campaign.sync" }, { schedule = "0 */6 * * *" }]
limits = { timeout-ms = 30000, memory-mb = 64 }
"#;
        let python = r#"
[project]
name = "x"
[tool.junction]
connections = ["mailchimp"]
triggers = [{ event = "campaign.sync" }, { schedule = "0 */6 * * *" }]
limits = { timeout-ms = 30000, memory-mb = 64 }
"#;
        let javascript = r#"{"name": "x", "junction": {
            "connections": ["mailchimp"],
            "triggers": [{"event": "campaign.sync"}, {"schedule": "0 */6 * * *"}],
            "limits": {"timeout-ms": 30000, "memory-mb": 64}}}"#;
        let read = |source, text| Manifest::from_source_text(source, text, "project").unwrap();
        let rust = read(ManifestSource::CargoToml, cargo);
        assert_eq!(rust.limits.memory_mb, Some(64));
        assert_eq!(rust.triggers.len(), 2);
        assert_eq!(read(ManifestSource::PyProject, python), rust);
        assert_eq!(read(ManifestSource::PackageJson, javascript), rust);
        // Without the table or key, an empty manifest.
        assert_eq!(
            read(ManifestSource::PackageJson, r#"{"name": "x"}"#),
            Manifest::default()
        );
        assert_eq!(
            read(ManifestSource::PyProject, "[project]\nname = \"x\"\n"),
            Manifest::default()
        );
    }

    #[test]
    fn any_project_file_is_told_by_its_content() {
        let expected = Manifest::from_json(r#"{"connections": ["crm"]}"#).unwrap();
        for text in [
            r#"{"connections": ["crm"]}"#,
            r#"{"name": "p", "junction": {"connections": ["crm"]}}"#,
            "[project]\nname = \"p\"\n[tool.junction]\nconnections = [\"crm\"]\n",
            "[package]\nname = \"p\"\n[package.metadata.junction]\nconnections = [\"crm\"]\n",
        ] {
            assert_eq!(
                Manifest::from_project_text(text, "upload").unwrap(),
                expected,
                "{text}"
            );
        }
        // A package.json or pyproject.toml without the table is an empty manifest.
        assert_eq!(
            Manifest::from_project_text(r#"{"name": "p"}"#, "upload").unwrap(),
            Manifest::default()
        );
        assert_eq!(
            Manifest::from_project_text("[project]\nname = \"p\"\n", "upload").unwrap(),
            Manifest::default()
        );
    }

    #[test]
    fn a_wrong_field_is_named_with_its_file_and_table() {
        let err = Manifest::from_source_text(
            ManifestSource::PackageJson,
            r#"{"junction": {"limits": {"memory-mb": "lots"}}}"#,
            "package.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"junction\" in package.json") && err.contains("limits.memory-mb"),
            "{err}"
        );
        let err = Manifest::from_source_text(
            ManifestSource::PyProject,
            "[tool.junction]\nconections = []\n",
            "pyproject.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[tool.junction]") && err.contains("conections"),
            "{err}"
        );
        let err = Manifest::from_source_text(ManifestSource::PackageJson, "{", "package.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("package.json is not valid JSON"), "{err}");
    }

    #[test]
    fn names_the_bad_field() {
        let err = Manifest::from_json(r#"{"conections": []}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("conections"), "{err}");
        let err = Manifest::from_json(r#"{"connections": ["Bad-Name"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Bad-Name"), "{err}");
    }

    #[test]
    fn org_fallback_names_only_the_plugins_connections() {
        let manifest = Manifest::from_json(
            r#"{"connections": ["mailchimp", "zohocrm"], "org-fallback": ["zohocrm"]}"#,
        )
        .unwrap();
        assert_eq!(manifest.org_fallback, ["zohocrm"]);
        let err =
            Manifest::from_json(r#"{"connections": ["mailchimp"], "org-fallback": ["slack"]}"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("org-fallback") && err.contains("slack"),
            "{err}"
        );
    }

    #[test]
    fn end_user_ids_are_opaque_but_bounded() {
        use crate::model::validate_end_user;
        for good in ["u1", "auth0|5f3a", "ana@example.com", "Zoë/Example"] {
            assert!(validate_end_user(good).is_ok(), "{good}");
        }
        for bad in ["", " u1", "u1 ", "a b", "a\u{a0}b", "a\nb", "a\u{0}b"] {
            assert!(validate_end_user(bad).is_err(), "{bad:?}");
        }
        assert!(validate_end_user(&"é".repeat(128)).is_ok());
        assert!(validate_end_user(&"é".repeat(129)).is_err());
    }

    #[test]
    fn limits_stay_under_the_ceiling() {
        let defaults = crate::limits::Limits::default();
        let manifest = Manifest::from_json(r#"{"limits": {"timeout-ms": 999999999}}"#).unwrap();
        let err = manifest.resolve_limits(&defaults, &defaults).unwrap_err();
        assert!(err.contains("timeout-ms"), "{err}");
    }

    proptest::proptest! {
        /// Any text is a manifest or an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,200}") {
            let _ = Manifest::from_json(&text);
            let _ = Manifest::from_cargo_toml_text(&text, "Cargo.toml");
        }

        /// Limits inside the ceiling resolve to themselves; past it, the error names the field.
        #[test]
        fn limits_resolve_within_the_ceiling(timeout_ms in 1u64..2_000_000, memory_mb in 1u64..2048, calls in 0u32..2000) {
            let manifest = Manifest::from_json(&format!(
                r#"{{"limits": {{"timeout-ms": {timeout_ms}, "memory-mb": {memory_mb}, "http-calls": {calls}}}}}"#
            )).unwrap();
            let defaults = crate::limits::Limits::default();
            let ceiling = crate::limits::Limits::default_ceiling();
            match manifest.resolve_limits(&defaults, &ceiling) {
                Ok(limits) => {
                    proptest::prop_assert_eq!(limits.timeout.as_millis() as u64, timeout_ms);
                    proptest::prop_assert_eq!(limits.memory_bytes as u64, memory_mb * 1024 * 1024);
                    proptest::prop_assert_eq!(limits.http_calls, calls);
                }
                Err(err) => {
                    proptest::prop_assert!(
                        (timeout_ms > 900_000 && err.contains("timeout-ms"))
                            || (memory_mb > 1024 && err.contains("memory-mb"))
                            || (calls > 1000 && err.contains("http-calls")),
                        "{}", err
                    );
                }
            }
        }
    }
}
