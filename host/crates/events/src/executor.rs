//! What the dispatcher runs deliveries with: an [`Executor`] that knows the
//! deployed plugins (in the host, the registry). The event machinery never
//! sees wasmtime or the registry itself.

use async_trait::async_trait;
use junction_core::{Event, ExecutionRecord};

/// Why a delivery's plugin cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRunnable {
    /// The plugin is gone; its deliveries are cancelled.
    #[error("plugin `{0}` was deleted")]
    Deleted(String),
    /// The plugin is deployed but failed to load; its deliveries fail.
    #[error("plugin `{plugin}` cannot run: {reason}")]
    Broken { plugin: String, reason: String },
}

/// Runs one event through a deployed plugin.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs `event` through `plugin` and returns what happened.
    async fn execute(&self, plugin: &str, event: Event) -> Result<ExecutionRecord, NotRunnable>;
}
