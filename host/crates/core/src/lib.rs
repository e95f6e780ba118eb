//! The vocabulary every Junction crate shares, and nothing else: ids and
//! the clock ([`ids`]), the event a plugin runs for ([`event`]), the record
//! of an execution ([`record`]), an input wrong in one field ([`field`]),
//! services and connections ([`model`],
//! [`oauth_settings`], [`secret`]), per-execution limits ([`limits`]),
//! origins ([`origin`]), triggers ([`trigger`]), the plugin manifest
//! ([`manifest`]) and the languages plugins are written in
//! ([`language`]). It sits at the bottom of the crate graph: no tokio,
//! wasmtime, redb or axum, so a type here can be used by any layer.

pub mod event;
pub mod field;
pub mod ids;
pub mod kv;
pub mod language;
pub mod limits;
pub mod manifest;
pub mod model;
pub mod oauth_settings;
pub mod origin;
pub mod record;
pub mod secret;
pub mod text;
pub mod trigger;

pub use event::{Event, payload_text};
pub use field::FieldError;
pub use ids::{new_id, now_ms};
pub use language::Language;
pub use limits::Limits;
pub use manifest::{Manifest, ManifestSource};
pub use model::{
    AuthType, Connection, ConnectionKey, ConnectionStatus, Credentials, Placement, Service,
    StateChange, validate_end_user, validate_link_name, validate_plugin_name,
    validate_service_name,
};
pub use oauth_settings::OAuthSettings;
pub use origin::HostPattern;
pub use record::{CallRecord, ExecutionRecord, Failure, LogLine, Outcome};
pub use secret::Secret;
