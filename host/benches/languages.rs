//! What a plugin costs in each language, for `hello` written in Rust,
//! Python (componentize-py) and JavaScript (componentize-js): component
//! size, the compile an upload does before the plugin is ready, the
//! deserialize a restart does instead, p50/p99 of a fresh isolated
//! execution with the pooling allocator, and the execution's peak linear
//! memory. Each figure is printed beside Rust's as a ratio.
//!
//! Run with `cargo bench -p junction-host --bench languages` (the first run
//! installs the Python and JavaScript toolchains into the cache).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_host::cli::build::build_plugin;
use junction_host::manifest::Manifest;
use junction_host::runtime::{Event, Grants, Runtime, RuntimeConfig};
use junction_host::store::Store;

const EXECUTIONS: usize = 2000;
const DESERIALIZES: usize = 5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

struct Costs {
    language: &'static str,
    size: u64,
    compile: Duration,
    deserialize: Duration,
    p50: Duration,
    p99: Duration,
    peak_memory: u64,
}

fn measure(rt: &tokio::runtime::Runtime, language: &'static str, dir: &str) -> Costs {
    let target = std::env::var_os("JUNCTION_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/plugins"));
    let built = build_plugin(&workspace().join(dir), Some(&target)).expect("build plugin");
    let bytes = std::fs::read(&built.path).expect("read component");
    let data = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(rt.block_on(Store::open(data.path())).expect("store"));
    let network = junction_host::netguard::NetworkPolicy::default();
    let tokens = junction_host::ports::token_keeper(store.clone(), network).expect("tokens");
    let runtime = Runtime::new(
        junction_host::ports::over_store(store, tokens),
        RuntimeConfig::default(),
    )
    .expect("runtime");
    assert!(
        runtime.is_pooling(),
        "the instance pool could not be reserved"
    );

    let started = Instant::now();
    let (artifact, _) = runtime.precompile(&bytes).expect("compile");
    let compile = started.elapsed();
    let mut deserializes: Vec<Duration> = (0..DESERIALIZES)
        .map(|_| {
            let started = Instant::now();
            runtime
                .deserialize_own_artifact(&artifact)
                .expect("deserialize");
            started.elapsed()
        })
        .collect();
    deserializes.sort();
    let component = runtime
        .deserialize_own_artifact(&artifact)
        .expect("deserialize");
    let plugin = runtime
        .load(
            "hello",
            &component,
            bytes.len(),
            Grants::default(),
            &built.manifest,
        )
        .or_else(|_| {
            runtime.load(
                "hello",
                &component,
                bytes.len(),
                Grants::default(),
                &Manifest::default(),
            )
        })
        .expect("load");

    let (samples, peak_memory) = rt.block_on(async {
        let mut peak = 0;
        // Warm the pool's slots and the code's pages first.
        for _ in 0..20 {
            let record = runtime
                .execute(&plugin, Event::new("hello", r#"{"n":1}"#))
                .await;
            assert!(record.is_ok(), "{language}: {record:#?}");
        }
        let mut samples = Vec::with_capacity(EXECUTIONS);
        for _ in 0..EXECUTIONS {
            let started = Instant::now();
            let record = runtime
                .execute(&plugin, Event::new("hello", r#"{"n":1}"#))
                .await;
            samples.push(started.elapsed());
            peak = peak.max(record.peak_memory_bytes);
        }
        (samples, peak)
    });
    let mut samples = samples;
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    Costs {
        language,
        size: bytes.len() as u64,
        compile,
        deserialize: deserializes[DESERIALIZES / 2],
        p50: at(0.50),
        p99: at(0.99),
        peak_memory,
    }
}

fn main() {
    // As `junction serve` runs.
    if let Err(err) = junction_host::decline_huge_pages() {
        eprintln!("transparent huge pages stay on: {err}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let all = [
        measure(&rt, "Rust", "plugins/hello"),
        measure(&rt, "Python", "plugins/hello-py"),
        measure(&rt, "JavaScript", "plugins/hello-js"),
    ];
    let rust = &all[0];
    let ratio = |a: f64, b: f64| format!("{:.0}×", a / b);
    println!(
        "{:<11} {:>16} {:>16} {:>18} {:>18} {:>18} {:>16}",
        "hello in",
        "size",
        "compile (upload)",
        "deserialize",
        "execution p50",
        "execution p99",
        "peak memory"
    );
    for c in &all {
        println!(
            "{:<11} {:>8.2} MB {:>5} {:>9.0} ms {:>5} {:>10.2} ms {:>5} {:>10.1} µs {:>5} {:>10.1} µs {:>5} {:>8.1} MB {:>5}",
            c.language,
            c.size as f64 / 1e6,
            ratio(c.size as f64, rust.size as f64),
            c.compile.as_secs_f64() * 1e3,
            ratio(c.compile.as_secs_f64(), rust.compile.as_secs_f64()),
            c.deserialize.as_secs_f64() * 1e3,
            ratio(c.deserialize.as_secs_f64(), rust.deserialize.as_secs_f64()),
            c.p50.as_secs_f64() * 1e6,
            ratio(c.p50.as_secs_f64(), rust.p50.as_secs_f64()),
            c.p99.as_secs_f64() * 1e6,
            ratio(c.p99.as_secs_f64(), rust.p99.as_secs_f64()),
            c.peak_memory as f64 / 1e6,
            ratio(c.peak_memory as f64, rust.peak_memory as f64),
        );
    }
}
