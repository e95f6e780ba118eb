//! The record of one execution: its outcome (output or a classified
//! failure), timing, peak memory, log lines and every `invoke-url` call.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Event;

/// How an execution failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    Trap,
    /// It ran past its deadline.
    Timeout,
    /// It tried to use more memory than its cap.
    MemoryLimit,
    /// It went past another budget (output size, payload size, ...).
    LimitExceeded,
    /// The handler returned an error.
    PluginError,
}

/// The result of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The handler returned this JSON value.
    Ok {
        #[schema(value_type = Object)]
        output: serde_json::Value,
    },
    /// It failed.
    Failed { failure: Failure, message: String },
}

impl Outcome {
    pub(crate) fn failed(failure: Failure, message: String) -> Self {
        Outcome::Failed { failure, message }
    }
}

/// One line of the execution's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// `trace`..`error` from the `log` interface, or `stdout`/`stderr`.
    pub level: String,
    /// The text.
    pub message: String,
    /// Milliseconds since the execution started.
    pub at_ms: f64,
}

/// One `invoke-url` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallRecord {
    /// The method.
    pub method: String,
    /// The final URL, with secret-looking query values redacted.
    pub url: String,
    /// The response status, if there was a response.
    pub status: Option<u16>,
    /// How long the call took.
    pub duration_ms: f64,
    /// The connection whose credentials were attached.
    pub connection: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Everything about one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionRecord {
    /// Unique id.
    pub id: String,
    /// The plugin.
    pub plugin: String,
    /// The event's id.
    pub event_id: String,
    /// The event's kind.
    pub event_kind: String,
    /// The delivery this execution was an attempt of (absent for a direct invoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// Which attempt of the delivery it was, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When it started.
    pub started_at_ms: u64,
    /// Wall time, from the call to the record.
    pub wall_time_ms: f64,
    /// The result.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The most linear memory the instance held.
    pub peak_memory_bytes: u64,
    /// The log.
    pub logs: Vec<LogLine>,
    /// Whether log lines were dropped for the log budget.
    pub logs_truncated: bool,
    /// Every `invoke-url` call.
    pub calls: Vec<CallRecord>,
}

impl ExecutionRecord {
    pub(crate) fn start(id: String, plugin: &str, event: &Event, started_at_ms: u64) -> Self {
        ExecutionRecord {
            id,
            plugin: plugin.to_owned(),
            event_id: event.id.clone(),
            event_kind: event.kind.clone(),
            delivery_id: None,
            attempt: None,
            started_at_ms,
            wall_time_ms: 0.0,
            outcome: Outcome::failed(Failure::Trap, "the execution did not run".into()),
            peak_memory_bytes: 0,
            logs: Vec::new(),
            logs_truncated: false,
            calls: Vec::new(),
        }
    }

    pub(crate) fn finish(mut self, elapsed: Duration) -> Self {
        self.wall_time_ms = elapsed.as_secs_f64() * 1000.0;
        self
    }

    /// Whether the handler returned normally.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }

    /// The output, when it succeeded.
    pub fn output(&self) -> Option<&serde_json::Value> {
        match &self.outcome {
            Outcome::Ok { output } => Some(output),
            Outcome::Failed { .. } => None,
        }
    }

    /// The failure class and message, when it failed.
    pub fn failure(&self) -> Option<(Failure, &str)> {
        match &self.outcome {
            Outcome::Ok { .. } => None,
            Outcome::Failed { failure, message } => Some((*failure, message)),
        }
    }
}

/// The outcome for a handler's `ok` string: JSON under the size limit.
pub(crate) fn output_outcome(output: String, max: usize) -> Outcome {
    if output.len() > max {
        return Outcome::failed(
            Failure::LimitExceeded,
            format!(
                "the plugin's output is {} bytes, above the limit of {max} bytes",
                output.len()
            ),
        );
    }
    match serde_json::from_str(&output) {
        Ok(output) => Outcome::Ok { output },
        Err(err) => Outcome::failed(
            Failure::PluginError,
            format!("the plugin's output is not JSON ({err}); return serialised JSON from handle"),
        ),
    }
}
