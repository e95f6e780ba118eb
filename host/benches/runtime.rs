//! Host overhead benchmarks, printed as figures beside their goals (what
//! `scripts/bench.sh` collects), then criterion's own report:
//! * a fresh execution (new store, instantiate from the cached
//!   `InstancePre`, `handle`, drop) of `noop` (the host's own cost) and of
//!   `hello` (plus a log line and a parsed payload), pooled and on demand,
//!   against wasmtime's floor on the same engine: a bare store and a
//!   one-function component instantiated and called the same way;
//! * `invoke-url` per call against a loopback server: the marginal cost of
//!   a call inside an execution (an execution of 20 calls minus one of 0,
//!   over 20), against the same GET with plain reqwest built with the host's
//!   client settings.
//!
//! Run with `cargo bench -p junction-host --bench runtime`. With
//! `JUNCTION_BENCH_PROFILE=noop` (or `hello`) it only runs that plugin's
//! fresh executions in a loop, for perf or callgrind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use junction_host::cli::build::build_plugin;
use junction_host::manifest::Manifest;
use junction_host::runtime::{Event, Grants, HostPattern, LoadedPlugin, Runtime, RuntimeConfig};
use junction_host::store::Store;

const CALLS_PER_EXECUTION: u32 = 20;
const FRESH_SAMPLES: usize = 20_000;
const CALL_ROUNDS: usize = 400;

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

/// wasmtime's floor on the runtime's own engine: a component with one
/// exported function and a one-page memory, instantiated in a bare store
/// and called, the way the runtime does it (async, pooled).
struct Floor {
    engine: wasmtime::Engine,
    pre: wasmtime::component::InstancePre<()>,
}

impl Floor {
    fn new(runtime: &Runtime) -> Self {
        let engine = runtime.engine().clone();
        let component = wasmtime::component::Component::new(
            &engine,
            r#"(component
                (core module $m
                  (memory (export "memory") 1)
                  (func (export "run") (result i32) i32.const 42))
                (core instance $i (instantiate $m))
                (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
        )
        .expect("floor component");
        let linker = wasmtime::component::Linker::new(&engine);
        let pre = linker.instantiate_pre(&component).expect("pre");
        Floor { engine, pre }
    }

    async fn run(&self) -> u32 {
        let mut store = wasmtime::Store::new(&self.engine, ());
        // The runtime's ticker advances the epoch; the floor never stops.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        let run = instance
            .get_typed_func::<(), (u32,)>(&mut store, "run")
            .expect("run");
        let (answer,) = run.call_async(&mut store, ()).await.expect("call");
        answer
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One figure for `scripts/bench.sh`: `FIGURE | what | measured | goal | reference`.
fn figure(what: &str, measured: String, goal: &str, reference: String) {
    println!("FIGURE | {what} | {measured} | {goal} | {reference}");
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

fn event() -> Event {
    Event::new("bench", r#"{"n":1}"#)
}

async fn fresh_samples(setup: &Setup) -> Vec<Duration> {
    for _ in 0..1000 {
        setup.runtime.execute(&setup.plugin, event()).await;
    }
    let mut samples = Vec::with_capacity(FRESH_SAMPLES);
    for _ in 0..FRESH_SAMPLES {
        let start = Instant::now();
        let record = setup.runtime.execute(&setup.plugin, event()).await;
        samples.push(start.elapsed());
        assert!(record.is_ok(), "{record:?}");
    }
    samples
}

async fn floor_samples(floor: &Floor) -> Vec<Duration> {
    for _ in 0..1000 {
        floor.run().await;
    }
    let mut samples = Vec::with_capacity(FRESH_SAMPLES);
    for _ in 0..FRESH_SAMPLES {
        let start = Instant::now();
        assert_eq!(floor.run().await, 42);
        samples.push(start.elapsed());
    }
    samples
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");

    if let Ok(plugin) = std::env::var("JUNCTION_BENCH_PROFILE") {
        let dir = if plugin == "hello" {
            "plugins/hello"
        } else {
            "tests/plugins/noop"
        };
        let profiled = setup(&rt, dir, &plugin, true, &[]);
        rt.block_on(async {
            for _ in 0..50_000 {
                profiled.runtime.execute(&profiled.plugin, event()).await;
            }
        });
        return;
    }

    let pooled = setup(&rt, "plugins/hello", "hello", true, &[]);
    let on_demand = setup(&rt, "plugins/hello", "hello", false, &[]);
    let noop = setup(&rt, "tests/plugins/noop", "noop", true, &[]);
    let floor = Floor::new(&pooled.runtime);
    let origin = rt.block_on(loopback_server());
    let caller = setup(
        &rt,
        "tests/plugins/probe",
        "probe",
        true,
        std::slice::from_ref(&origin),
    );
    let url = format!("{origin}/ping");
    let fetch = |times: u32| {
        Event::new(
            "gets",
            serde_json::json!({"url": url, "times": times}).to_string(),
        )
    };
    let network = junction_host::netguard::NetworkPolicy {
        allow_private: true,
    };
    let client = junction_host::runtime::outbound_client(network).expect("client");

    rt.block_on(async {
        let mut floor_times = floor_samples(&floor).await;
        let mut noop_times = fresh_samples(&noop).await;
        let mut hello_times = fresh_samples(&pooled).await;
        let mut on_demand_times = fresh_samples(&on_demand).await;
        let floor_p50 = percentile(&mut floor_times, 0.5);
        for (what, samples, goal) in [
            (
                "fresh execution of hello, pooled",
                &mut hello_times,
                "p50 <= 6 us",
            ),
            ("fresh execution of noop, pooled", &mut noop_times, "-"),
            (
                "fresh execution of hello, on demand",
                &mut on_demand_times,
                "-",
            ),
            (
                "wasmtime floor: bare store + one-function component",
                &mut floor_times,
                "-",
            ),
        ] {
            let p50 = percentile(samples, 0.5);
            let p99 = percentile(samples, 0.99);
            figure(
                what,
                format!("p50 {:.2} us, p99 {:.2} us", micros(p50), micros(p99)),
                goal,
                format!("{:.2}x wasmtime's floor", micros(p50) / micros(floor_p50)),
            );
        }

        // Interleaved rounds, so both sides see the same machine.
        let (mut none, mut twenty, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..CALL_ROUNDS {
            let start = Instant::now();
            let record = caller.runtime.execute(&caller.plugin, fetch(0)).await;
            none.push(start.elapsed());
            assert!(record.is_ok(), "{record:?}");

            let start = Instant::now();
            let record = caller
                .runtime
                .execute(&caller.plugin, fetch(CALLS_PER_EXECUTION))
                .await;
            twenty.push(start.elapsed());
            assert!(
                record.is_ok() && record.calls.iter().all(|c| c.status == Some(200)),
                "{record:?}"
            );

            let start = Instant::now();
            for _ in 0..CALLS_PER_EXECUTION {
                let body = client
                    .get(&url)
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
        let n = f64::from(CALLS_PER_EXECUTION);
        let per_call =
            (micros(percentile(&mut twenty, 0.5)) - micros(percentile(&mut none, 0.5))) / n;
        let plain_per_call = micros(percentile(&mut plain, 0.5)) / n;
        figure(
            "invoke-url per call (loopback GET)",
            format!("{per_call:.1} us"),
            "<= 1.05x plain reqwest",
            format!(
                "{:.3}x plain reqwest ({plain_per_call:.1} us per GET, same client settings)",
                per_call / plain_per_call
            ),
        );
    });

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("execute");
    group.bench_function("hello_pooled", |b| {
        b.to_async(&rt)
            .iter(|| pooled.runtime.execute(&pooled.plugin, event()))
    });
    group.bench_function("noop_pooled", |b| {
        b.to_async(&rt)
            .iter(|| noop.runtime.execute(&noop.plugin, event()))
    });
    group.bench_function("floor", |b| b.to_async(&rt).iter(|| floor.run()));
    group.finish();
    criterion.final_summary();
}
