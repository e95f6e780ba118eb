//! Host overhead benchmarks (criterion), plus a percentile summary printed
//! first:
//! * one trivial execution of `hello` (fresh store, instantiate from the
//!   cached `InstancePre`, `handle` with a small event, drop), with and
//!   without the pooling allocator;
//! * `invoke-url` through the host against a loopback server, against the
//!   same requests sent with plain reqwest.
//!
//! Run with `cargo bench -p junction-host --bench runtime`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use junction_host::cli::build::build_plugin;
use junction_host::manifest::Manifest;
use junction_host::runtime::{Event, Grants, HostPattern, LoadedPlugin, Runtime, RuntimeConfig};
use junction_host::store::Store;

const CALLS_PER_EXECUTION: usize = 20;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

fn component(plugin_dir: &str) -> Vec<u8> {
    let target = std::env::var_os("JUNCTION_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/plugins"));
    let built = build_plugin(&workspace().join(plugin_dir), Some(&target)).expect("build plugin");
    std::fs::read(built.path).expect("read component")
}

struct Setup {
    runtime: Runtime,
    plugin: LoadedPlugin,
    _dir: tempfile::TempDir,
}

fn setup(
    rt: &tokio::runtime::Runtime,
    package_dir: &str,
    name: &str,
    pooling: bool,
    allowed: &[String],
) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(rt.block_on(Store::open(dir.path())).expect("store"));
    // The echo server listens on 127.0.0.1.
    let network = junction_host::netguard::NetworkPolicy {
        allow_private: true,
    };
    let tokens = junction_host::ports::token_keeper(store.clone(), network).expect("tokens");
    let runtime = Runtime::new(
        junction_host::ports::over_store(store, tokens),
        RuntimeConfig {
            pooling,
            network,
            ..RuntimeConfig::default()
        },
    )
    .expect("runtime");
    assert_eq!(runtime.is_pooling(), pooling, "pool could not be reserved");
    let bytes = component(package_dir);
    let compiled = runtime.compile(&bytes).expect("compile");
    let grants = Grants {
        allowed_hosts: allowed
            .iter()
            .map(|h| HostPattern::parse(h).expect("pattern"))
            .collect(),
        ..Grants::default()
    };
    let plugin = runtime
        .load(name, &compiled, bytes.len(), grants, &Manifest::default())
        .expect("load");
    Setup {
        runtime,
        plugin,
        _dir: dir,
    }
}

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "{label:<44} n={:<6} p50={:>9.1?} p99={:>9.1?} min={:>9.1?}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[0]
    );
}

async fn loopback_server() -> String {
    let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let pooled = setup(&rt, "plugins/hello", "hello", true, &[]);
    let on_demand = setup(&rt, "plugins/hello", "hello", false, &[]);
    let origin = rt.block_on(loopback_server());
    let caller = setup(
        &rt,
        "tests/plugins/probe",
        "probe",
        true,
        std::slice::from_ref(&origin),
    );
    let calls: Vec<serde_json::Value> = (0..CALLS_PER_EXECUTION)
        .map(|_| serde_json::json!({"url": format!("{origin}/ping")}))
        .collect();
    let calls_payload = serde_json::Value::Array(calls).to_string();
    let client = reqwest::Client::new();
    let event = || Event::new("bench", r#"{"n":1}"#);

    // Percentiles first: criterion reports means and medians of batches.
    rt.block_on(async {
        for (label, setup) in [
            ("trivial execution, pooling", &pooled),
            ("trivial execution, on-demand", &on_demand),
        ] {
            for _ in 0..1000 {
                setup.runtime.execute(&setup.plugin, event()).await;
            }
            let mut samples = Vec::with_capacity(20_000);
            for _ in 0..20_000 {
                let start = Instant::now();
                let record = setup.runtime.execute(&setup.plugin, event()).await;
                samples.push(start.elapsed());
                assert!(record.is_ok());
            }
            percentiles(label, samples);
        }
        let mut host = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..300 {
            let start = Instant::now();
            let record = caller
                .runtime
                .execute(&caller.plugin, Event::new("calls", calls_payload.clone()))
                .await;
            host.push(start.elapsed());
            assert!(
                record.is_ok() && record.calls.iter().all(|c| c.status == Some(200)),
                "{record:?}"
            );
            let start = Instant::now();
            for _ in 0..CALLS_PER_EXECUTION {
                let body = client
                    .get(format!("{origin}/ping"))
                    .send()
                    .await
                    .expect("send")
                    .bytes()
                    .await
                    .expect("body");
                assert_eq!(&body[..], b"pong");
            }
            plain.push(start.elapsed());
        }
        // The same number of calls refused before any I/O: what crossing
        // into the host and checking a request costs, without the network.
        let refused: Vec<serde_json::Value> = (0..CALLS_PER_EXECUTION)
            .map(|_| serde_json::json!({"url": "http://192.0.2.1/ping"}))
            .collect();
        let refused = serde_json::Value::Array(refused).to_string();
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let start = Instant::now();
            let record = caller
                .runtime
                .execute(&caller.plugin, Event::new("calls", refused.clone()))
                .await;
            samples.push(start.elapsed());
            assert!(
                record.is_ok() && record.calls.iter().all(|c| c.error.is_some()),
                "{record:?}"
            );
        }
        percentiles(
            &format!("{CALLS_PER_EXECUTION} refused invoke-url calls (no I/O)"),
            samples,
        );
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (host_p50, plain_p50) = (median(host.clone()), median(plain.clone()));
        percentiles(
            &format!("{CALLS_PER_EXECUTION} invoke-url calls via the host"),
            host,
        );
        percentiles(
            &format!("{CALLS_PER_EXECUTION} GETs with plain reqwest"),
            plain,
        );
        println!(
            "invoke-url overhead: {:.2}x plain reqwest (per call {:.1?} vs {:.1?})",
            host_p50.as_secs_f64() / plain_p50.as_secs_f64(),
            host_p50 / CALLS_PER_EXECUTION as u32,
            plain_p50 / CALLS_PER_EXECUTION as u32
        );
    });

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("execute_hello");
    group.bench_function("pooling", |b| {
        b.to_async(&rt)
            .iter(|| pooled.runtime.execute(&pooled.plugin, event()))
    });
    group.bench_function("on_demand", |b| {
        b.to_async(&rt)
            .iter(|| on_demand.runtime.execute(&on_demand.plugin, event()))
    });
    group.finish();
    let mut group = criterion.benchmark_group("invoke_url_x20");
    group.sample_size(30);
    group.bench_function("through_host", |b| {
        b.to_async(&rt).iter(|| {
            caller
                .runtime
                .execute(&caller.plugin, Event::new("calls", calls_payload.clone()))
        })
    });
    group.bench_function("plain_reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..CALLS_PER_EXECUTION {
                let response = client
                    .get(format!("{origin}/ping"))
                    .send()
                    .await
                    .expect("send");
                let _ = response.bytes().await.expect("body");
            }
        })
    });
    group.finish();
    criterion.final_summary();
}
