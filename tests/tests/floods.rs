//! A hostile plugin floods the host: millions of log calls and printed
//! lines, thousands of oversized calls after its budget, a 40 MiB error. The
//! record stays under its stated bound and the host's memory under the
//! execution's own cap plus a fixed margin. One test in its own binary, so
//! the process's peak memory belongs to it alone.

use std::time::Duration;

use junction_host::runtime::{ExecutionRecord, Failure, max_stored_bytes};
use junction_tests::harness::{Harness, limits};
use serde_json::json;

/// Host memory one execution may cost beyond its memory cap: the copy of a
/// guest argument being lifted (at most the guest's memory, counted
/// separately below), the record, and the runtime's own buffers.
const HOST_MARGIN: u64 = 48 * 1024 * 1024;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Resets the peak so the next reading covers only what follows.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

struct Measured {
    record: ExecutionRecord,
    stored_bytes: usize,
    peak_growth: u64,
}

async fn flood(h: &Harness, memory_mb: u64, kind: &str, payload: serde_json::Value) -> Measured {
    let manifest = limits(Duration::from_millis(3000), memory_mb);
    let plugin = h.load("probe", "probe", &[], &[], &manifest);
    reset_peak();
    let before = status_kib("VmRSS:") * 1024;
    let record = h.run(&plugin, kind, payload).await;
    let stored_bytes = serde_json::to_vec(&record).expect("record encodes").len();
    let peak = status_kib("VmHWM:") * 1024;
    let bound = max_stored_bytes(plugin.limits());
    assert!(
        stored_bytes <= bound,
        "{kind}: the record is {stored_bytes} bytes, above the bound of {bound}"
    );
    let growth = peak.saturating_sub(before);
    let allowed = 2 * memory_mb * 1024 * 1024 + HOST_MARGIN;
    assert!(
        growth <= allowed,
        "{kind}: the host's peak memory grew by {growth} bytes, above {allowed}"
    );
    println!(
        "{kind}: record {stored_bytes} bytes (bound {bound}), peak RSS +{} MiB (cap {memory_mb} MiB), {:?}, {} log lines kept, {} dropped, {} calls kept, {} dropped",
        growth / (1024 * 1024),
        record.failure().map(|f| f.0),
        record.logs.len(),
        record.logs_dropped,
        record.calls.len(),
        record.calls_dropped,
    );
    Measured {
        record,
        stored_bytes,
        peak_growth: growth,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_leave_a_bounded_record_and_bounded_host_memory() {
    let h = Harness::new().await;
    // Warm up: the first execution maps the pool and compiles lazily.
    let warm = h.load_simple("probe", &[]);
    let _ = h.run(&warm, "fail", json!({})).await;

    let logs = flood(&h, 64, "log-flood", json!({"n": 2_000_000})).await;
    assert!(logs.record.logs_truncated);
    assert_eq!(
        logs.record.logs.len(),
        1000,
        "the line cap holds for empty lines"
    );
    assert!(logs.record.logs_dropped > 0);

    let long_logs = flood(
        &h,
        64,
        "log-flood",
        json!({"n": 100_000, "line_bytes": 100_000}),
    )
    .await;
    assert!(
        long_logs
            .record
            .logs
            .iter()
            .all(|l| l.message.len() <= 8 * 1024)
    );
    assert!(long_logs.record.logs_truncated);

    let printed = flood(&h, 64, "print-flood", json!({"n": 2_000_000})).await;
    assert!(printed.record.logs_truncated);
    assert!(printed.record.logs.len() <= 1000);

    let calls = flood(
        &h,
        64,
        "call-flood",
        json!({"n": 20_000, "url_bytes": 64 * 1024}),
    )
    .await;
    let (failure, message) = calls.record.failure().expect("the flood is stopped");
    assert_eq!(failure, Failure::LimitExceeded, "{message}");
    assert!(message.contains("after its limit of 50 calls"), "{message}");
    assert_eq!(
        calls.record.calls.len(),
        61,
        "50 admitted, 11 refused, then stopped"
    );
    assert!(calls.record.calls.iter().all(|c| c.url.len() <= 2 * 1024));
    assert!(
        calls.record.calls[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("above the limit of 8192 bytes"),
        "{:?}",
        calls.record.calls[0]
    );

    let error = flood(&h, 128, "big-error", json!({"mib": 40})).await;
    let (failure, message) = error.record.failure().expect("it fails");
    assert_eq!(failure, Failure::PluginError);
    assert!(message.len() <= 64 * 1024, "{}", message.len());
    assert!(message.ends_with("bytes cut]"), "the cut is marked");

    let largest = [&logs, &long_logs, &printed, &calls, &error]
        .iter()
        .map(|m| (m.stored_bytes, m.peak_growth))
        .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    println!(
        "largest record {} bytes; largest peak RSS growth {} MiB",
        largest.0,
        largest.1 / (1024 * 1024)
    );
}
