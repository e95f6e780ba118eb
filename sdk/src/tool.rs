//! Plugins as MCP tools: the JSON Schema of a tool's arguments, derived
//! from a Rust type with [`schemars`], so the type the handler reads and
//! the schema agents see cannot drift apart.
//!
//! ```ignore
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct CampaignSync {
//!     /// The MailChimp campaign id.
//!     campaign_id: String,
//! }
//! junction_sdk::export!(handle, tool_input = CampaignSync);
//! ```
//!
//! With `tool = { name = "…", description = "…" }` in the manifest and no
//! `input-schema`, the host asks the plugin at upload — an event of kind
//! [`DESCRIBE_KIND`], answered by the exported wrapper with
//! [`input_schema`] — and keeps the answer as the tool's schema.

pub use schemars;
pub use schemars::JsonSchema;

/// The event kind the host sends at upload to ask a tool for its schema.
pub const DESCRIBE_KIND: &str = "junction.tool-schema";

/// The JSON Schema of `T`, as a tool's `input-schema`.
pub fn input_schema<T: JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(serde_json::Value::Null)
}
