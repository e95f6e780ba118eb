//! What one execution may use: wall time, memory, calls, bytes of payload,
//! log and kv. The runtime enforces them; manifests ask for them within
//! the operator's ceiling.

use std::time::Duration;

/// Per-execution limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall time for one execution.
    pub timeout: Duration,
    /// Linear memory, summed over the instance's memories.
    pub memory_bytes: usize,
    /// `invoke-url` calls per execution.
    pub http_calls: u32,
    /// `invoke-url` calls in flight at once.
    pub http_concurrency: usize,
    /// Largest `invoke-url` response body.
    pub response_bytes: usize,
    /// Largest event payload and plugin output.
    pub payload_bytes: usize,
    /// Log lines plus captured stdout/stderr, in bytes (each line costs its
    /// text plus a fixed overhead).
    pub log_bytes: usize,
    /// Log lines plus captured stdout/stderr lines.
    pub log_lines: usize,
    /// Bytes (keys plus values) the plugin may keep in its kv namespace.
    pub kv_bytes: u64,
    /// Keys the plugin may keep in its kv namespace.
    pub kv_keys: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 128 * 1024 * 1024,
            http_calls: 50,
            http_concurrency: 6,
            response_bytes: 10 * 1024 * 1024,
            payload_bytes: 1024 * 1024,
            log_bytes: 64 * 1024,
            log_lines: 1000,
            kv_bytes: 16 * 1024 * 1024,
            kv_keys: 10_000,
        }
    }
}

impl Limits {
    /// The most any plugin may ask for unless the operator says otherwise.
    pub fn default_ceiling() -> Self {
        Limits {
            timeout: Duration::from_secs(15 * 60),
            memory_bytes: 1024 * 1024 * 1024,
            http_calls: 1000,
            http_concurrency: 32,
            kv_bytes: 1024 * 1024 * 1024,
            kv_keys: 1_000_000,
            ..Limits::default()
        }
    }
}
