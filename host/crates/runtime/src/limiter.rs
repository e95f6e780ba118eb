//! The memory cap of one execution. A grow past the cap traps (rather than
//! returning -1, which Rust's allocator turns into an abort that looks like
//! any other trap), and the limiter remembers that it did, so the failure is
//! classified as `memory-limit`. It also records the peak.

use wasmtime::ResourceLimiter;

/// Table elements any one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub(crate) struct MemoryLimiter {
    cap: usize,
    used: usize,
    peak: usize,
    hit: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(cap: usize) -> Self {
        MemoryLimiter {
            cap,
            used: 0,
            peak: 0,
            hit: false,
        }
    }

    /// The most linear memory the instance held at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak as u64
    }

    /// Whether the instance tried to go past the cap.
    pub(crate) fn hit(&self) -> bool {
        self.hit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.cap {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit: growing to {after} bytes is above the cap of {} bytes",
                self.cap
            )));
        }
        self.used = after;
        self.peak = self.peak.max(after);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
