//! The record of one execution: its outcome (output or a classified
//! failure), timing, peak memory, log lines and every `invoke-url` call —
//! and the bounds that keep it small whatever the plugin does: the log's
//! budgets (in `stdio`), at most [`MAX_CALL_RECORDS`] call entries with
//! their texts cut at [`MAX_CALL_TEXT`], and a failure message cut at
//! [`MAX_FAILURE_MESSAGE`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::text::truncate_with_marker;

/// Call entries kept in one record; later calls are only counted.
pub const MAX_CALL_RECORDS: usize = 100;
/// Longest URL or error text kept in a call entry.
pub const MAX_CALL_TEXT: usize = 2 * 1024;
/// Longest failure message kept (a plugin's `Err`, a trap's text).
pub const MAX_FAILURE_MESSAGE: usize = 64 * 1024;
/// A record's fields besides its texts and lists: ids, names, timing, counters.
const FIXED_BYTES: usize = 4 * 1024;
/// One log line's JSON framing besides its text (level, time, punctuation).
const LINE_FRAMING: usize = 96;
/// One call entry's JSON besides its URL and error: method, status, timing,
/// a connection's link name (at most 50 characters), punctuation.
const CALL_FRAMING: usize = 400;

/// The most bytes one execution record can take as stored JSON under
/// `limits`, whatever the plugin does. Output and failure message exclude
/// each other; the log is budgeted in JSON bytes already; call texts hold no
/// control characters, so JSON at most doubles them; a failure message may
/// be all control characters, six bytes each once escaped.
pub fn max_stored_bytes(limits: &crate::limits::Limits) -> usize {
    let outcome = limits.payload_bytes.max(6 * MAX_FAILURE_MESSAGE);
    let logs = limits.log_bytes + limits.log_lines * LINE_FRAMING;
    let calls = MAX_CALL_RECORDS * (2 * MAX_CALL_TEXT + 2 * MAX_CALL_TEXT + CALL_FRAMING);
    FIXED_BYTES + outcome + logs + calls
}

/// How long `text` is as a JSON string's contents: control characters take
/// six bytes (`\u0000`), quotes and backslashes two.
pub fn json_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

/// A text for a call entry: control characters become spaces.
pub fn plain_text(text: String) -> String {
    if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        text
    }
}

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
    /// A failure; the message is cut at [`MAX_FAILURE_MESSAGE`] with a marker.
    pub fn failed(failure: Failure, message: String) -> Self {
        Outcome::Failed {
            failure,
            message: truncate_with_marker(message, MAX_FAILURE_MESSAGE),
        }
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
    /// How many times the attached credential was found in the response and
    /// replaced by `[REDACTED]` before the plugin saw it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
    /// The end user it ran for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
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
    /// How many log lines were dropped for the log budget.
    #[serde(default)]
    pub logs_dropped: u64,
    /// The `invoke-url` calls, up to the first 100.
    pub calls: Vec<CallRecord>,
    /// Calls made past the first 100, counted but not listed.
    #[serde(default)]
    pub calls_dropped: u64,
    /// Link names the plugin asked for that its end user has no connection
    /// of: what a connect link would fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_connections: Vec<String>,
}

impl ExecutionRecord {
    pub fn start(id: String, plugin: &str, event: &Event, started_at_ms: u64) -> Self {
        ExecutionRecord {
            id,
            plugin: plugin.to_owned(),
            event_id: event.id.clone(),
            event_kind: event.kind.clone(),
            end_user: event.end_user.clone(),
            delivery_id: None,
            attempt: None,
            started_at_ms,
            wall_time_ms: 0.0,
            outcome: Outcome::failed(Failure::Trap, "the execution did not run".into()),
            peak_memory_bytes: 0,
            logs: Vec::new(),
            logs_truncated: false,
            logs_dropped: 0,
            calls: Vec::new(),
            calls_dropped: 0,
            missing_connections: Vec::new(),
        }
    }

    pub fn finish(mut self, elapsed: Duration) -> Self {
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
pub fn output_outcome(output: String, max: usize) -> Outcome {
    if output.len() > max {
        return Outcome::failed(
            Failure::LimitExceeded,
            format!(
                "the plugin's output is {} bytes, above the limit of {max} bytes",
                output.len()
            ),
        );
    }
    match serde_json::from_str::<serde_json::Value>(&output) {
        // Stored re-serialised, which can be longer than the text (`1e15`
        // becomes `1000000000000000.0`): the limit holds for what is stored.
        Ok(value) if serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len()) > max => {
            Outcome::failed(
                Failure::LimitExceeded,
                format!(
                    "the plugin's output is above the limit of {max} bytes once stored as JSON"
                ),
            )
        }
        Ok(output) => Outcome::Ok { output },
        Err(err) => Outcome::failed(
            Failure::PluginError,
            format!("the plugin's output is not JSON ({err}); return serialised JSON from handle"),
        ),
    }
}
