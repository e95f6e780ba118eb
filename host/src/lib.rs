//! Junction: a WebAssembly component plugin host with managed third-party
//! connections. This crate is the top of the crate graph: the `junction`
//! binary (`main.rs`) and its command line ([`cli`], the only user of clap).
//! The layers below are re-exported under the names the CLI, the tests and
//! the benchmarks use; `ARCHITECTURE.md` draws them.

pub mod cli;

pub use junction_app::{ports, registry};
pub use junction_core::Language;
pub use junction_core::manifest;
pub use junction_events as events;
pub use junction_events::metrics;
pub use junction_net as netguard;
pub use junction_oauth as oauth;
pub use junction_runtime as runtime;
pub use junction_server as server;
pub use junction_store as store;

/// mimalloc instead of glibc's malloc: under load glibc's allocator was a
/// seventh of the server's CPU (`_int_malloc`, `_int_free`,
/// `malloc_consolidate`). Set here, in the library, so the binary, its
/// tests and its benches all run the allocator that ships. Built with
/// `no_thp`: mimalloc otherwise asks for transparent huge pages, and every
/// page it purged and touched again cost the kernel a 2 MiB clear (5% of
/// the server's CPU under an event flood, and the events p99 twice over).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps this process's memory off transparent huge pages, whatever the
/// machine's setting. `no_thp` only stops mimalloc from asking for them;
/// where the kernel's mode is `always` (RHEL's default) it hands them out
/// unasked, and each page that mimalloc purges and touches again costs a
/// 2 MiB clear. Measured here with the mode set to `always`, events at 64
/// connections in eight interleaved pairs: p99 8.3-10.0 ms with this call
/// against 8.9-42 ms without, and 106 MB resident after the run against
/// 152-158 MB. Linux only (the flag belongs to the process and its
/// children inherit it, so only `serve` sets it); elsewhere it does
/// nothing. Call it before the runtime starts its threads.
pub fn decline_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}
