//! Host overhead benchmarks, printed as figures beside their goals (what
//! `scripts/bench.sh` collects), then criterion's own report:
//! * a fresh execution (new store, instantiate from the cached
//!   `InstancePre`, `handle`, drop) of `noop` (the host's own cost) and of
//!   `hello` (plus a log line and a parsed payload), pooled and on demand,
//!   against wasmtime's floors on the same engine: a bare store and a
//!   one-function component instantiated and called the same way, with a
//!   one-page memory and with hello's memory shape (what the pool's reset
//!   costs), and each plugin's own component in a bare store with its
//!   imports stubbed (what wasmtime and the guest cost without the host);
//! * `invoke-url` per call against a loopback server: the marginal cost of
//!   a call inside an execution (an execution of 20 calls minus one of 1,
//!   over 19), against the same GET with plain reqwest built with the host's
//!   client settings, and against wasmtime's floor for it: a bare async
//!   host import making the same GET; a call refused before sending gives
//!   the host's own cost. All of it twice: driven from `block_on` on the
//!   bench's own thread, and from a task on a runtime worker, where the
//!   host runs executions.
//!
//! Run with `cargo bench -p junction-host --bench runtime`. With
//! `JUNCTION_BENCH_PROFILE=noop` (or `hello`) it only runs that plugin's
//! fresh executions in a loop, for perf or callgrind (`noop-floor` and
//! `hello-floor` loop the plugin's floor instead); `gets` and `reqwest`
//! loop the two sides of the invoke-url comparison on a runtime worker,
//! `first` and `none` executions of one GET and of none, and `refused`
//! calls the host refuses before sending.

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
/// Executions of 20 calls (or 20 plain GETs) a call profile loops.
const PROFILED_EXECUTIONS: u32 = 10_000;
/// The loopback servers listen on 127.0.0.1.
const LOOPBACK: junction_host::netguard::NetworkPolicy = junction_host::netguard::NetworkPolicy {
    allow_private: true,
};
/// Not among the probe's allowed hosts: refused before anything is sent.
const REFUSED_URL: &str = "http://192.0.2.1/ping";

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
    /// The plugin's component as the runtime compiled it: what a
    /// [`PluginFloor`] instantiates without the host around it.
    compiled: wasmtime::component::Component,
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
    let tokens = junction_host::ports::token_keeper(store.clone(), LOOPBACK).expect("tokens");
    let runtime = Runtime::new(
        junction_host::ports::over_store(store, tokens),
        RuntimeConfig {
            pooling,
            network: LOOPBACK,
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
        compiled,
        _dir: dir,
    }
}

/// wasmtime's floor on the runtime's own engine: a component instantiated
/// in a bare store (no WASI, no host state) and its `run(n)` called, the
/// way the runtime does it (async, pooled).
struct Floor {
    engine: wasmtime::Engine,
    pre: wasmtime::component::InstancePre<()>,
}

/// One exported function and a one-page memory: instantiation alone.
const BARE_FLOOR: &str = r#"(component
    (core module $m
      (memory (export "memory") 1)
      (func (export "run") (param i32) (result i32) i32.const 42))
    (core instance $i (instantiate $m))
    (func (export "run") (param "n" u32) (result u32) (canon lift (core func $i "run"))))"#;

/// hello's memory shape: 17 pages with a data segment (so the pool keeps
/// an image to restore), and `run` writes four pages — two of the stack
/// below 1 MiB, the data, the heap — which the pool must reset afterwards.
const SHAPED_FLOOR: &str = r#"(component
    (core module $m
      (memory (export "memory") 17)
      (data (i32.const 1048576) "an image for the pool to restore")
      (func (export "run") (param $n i32) (result i32)
        (i32.store (i32.const 1040000) (local.get $n))
        (i32.store (i32.const 1048000) (local.get $n))
        (i32.store (i32.const 1048600) (local.get $n))
        (i32.store (i32.const 1064960) (local.get $n))
        i32.const 42))
    (core instance $i (instantiate $m))
    (func (export "run") (param "n" u32) (result u32) (canon lift (core func $i "run"))))"#;

/// An async host import `get`, called `n` times; answers how many were 200.
const CALLING_FLOOR: &str = r#"(component
    (import "get" (func $get (result u32)))
    (core func $get_lowered (canon lower (func $get)))
    (core module $m
      (import "host" "get" (func $get (result i32)))
      (memory (export "memory") 1)
      (func (export "run") (param $n i32) (result i32) (local $ok i32)
        (block $done
          (loop $next
            (br_if $done (i32.eqz (local.get $n)))
            (local.set $ok (i32.add (local.get $ok) (i32.eq (call $get) (i32.const 200))))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $next)))
        (local.get $ok)))
    (core instance $h (export "get" (func $get_lowered)))
    (core instance $i (instantiate $m (with "host" (instance $h))))
    (func (export "run") (param "n" u32) (result u32) (canon lift (core func $i "run"))))"#;

impl Floor {
    fn new(runtime: &Runtime, wat: &str) -> Self {
        let linker = wasmtime::component::Linker::new(runtime.engine());
        Self::linked(runtime, wat, &linker)
    }

    /// The calling floor: `get` is the same GET as plain reqwest's, made
    /// by a host function with nothing around it.
    fn calling(runtime: &Runtime, client: reqwest::Client, url: String) -> Self {
        let mut linker = wasmtime::component::Linker::new(runtime.engine());
        linker
            .root()
            .func_wrap_async("get", move |_store, (): ()| {
                let (client, url) = (client.clone(), url.clone());
                Box::new(async move {
                    let response = client.get(&url).send().await?;
                    let status = response.status().as_u16();
                    response.bytes().await?;
                    Ok((u32::from(status),))
                })
            })
            .expect("get");
        Self::linked(runtime, CALLING_FLOOR, &linker)
    }

    fn linked(runtime: &Runtime, wat: &str, linker: &wasmtime::component::Linker<()>) -> Self {
        let engine = runtime.engine().clone();
        let component = wasmtime::component::Component::new(&engine, wat).expect("floor component");
        let pre = linker.instantiate_pre(&component).expect("pre");
        Floor { engine, pre }
    }

    async fn run(&self, n: u32) -> u32 {
        let (mut store, instance) = bare_instance(&self.engine, &self.pre).await;
        let run = instance
            .get_typed_func::<(u32,), (u32,)>(&mut store, "run")
            .expect("run");
        let (answer,) = run.call_async(&mut store, (n,)).await.expect("call");
        answer
    }
}

/// A fresh instance in a bare store, as every floor starts.
async fn bare_instance(
    engine: &wasmtime::Engine,
    pre: &wasmtime::component::InstancePre<()>,
) -> (wasmtime::Store<()>, wasmtime::component::Instance) {
    let mut store = wasmtime::Store::new(engine, ());
    // The runtime's ticker advances the epoch; a floor never stops.
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    (store, instance)
}

/// wasmtime's floor for a plugin's own component: the same compiled
/// component, instantiated in a bare store and its `handle` called with the
/// same event, but with nothing of the host's around it — no WASI context,
/// no host state, limiter, deadline, record or log book. Every import traps
/// except `log`, which does nothing (hello logs a line; noop imports
/// nothing it calls). What is left is what wasmtime and the guest cost for
/// this component's shape (three core modules, tables, WASI imports).
struct PluginFloor {
    engine: wasmtime::Engine,
    pre: wasmtime::component::InstancePre<()>,
    handle: wasmtime::component::ComponentExportIndex,
}

/// The world's `event` record, lowered the way the runtime's bindings do.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
struct FloorEvent {
    id: String,
    kind: String,
    payload: String,
    #[component(name = "occurred-at-ms")]
    occurred_at_ms: u64,
}

/// `junction:plugin/log`'s `level`, lifted and dropped.
#[expect(dead_code, reason = "only lifted from the guest, never built here")]
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lift)]
#[component(enum)]
#[repr(u8)]
enum FloorLevel {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}

impl PluginFloor {
    fn new(setup: &Setup) -> Self {
        let engine = setup.runtime.engine().clone();
        let mut linker = wasmtime::component::Linker::<()>::new(&engine);
        linker
            .instance("junction:plugin/log@0.1.1")
            .expect("log interface")
            .func_wrap("log", |_store, (_level, _message): (FloorLevel, String)| {
                Ok(())
            })
            .expect("log");
        linker
            .define_unknown_imports_as_traps(&setup.compiled)
            .expect("trapping imports");
        let pre = linker
            .instantiate_pre(&setup.compiled)
            .expect("plugin floor pre");
        let handle = setup
            .compiled
            .get_export_index(None, "handle")
            .expect("handle export");
        PluginFloor {
            engine,
            pre,
            handle,
        }
    }

    async fn run(&self, event: &FloorEvent) {
        let (mut store, instance) = bare_instance(&self.engine, &self.pre).await;
        let handle = instance
            .get_typed_func::<(&FloorEvent,), (Result<String, String>,)>(&mut store, &self.handle)
            .expect("handle");
        let (output,) = handle.call_async(&mut store, (event,)).await.expect("call");
        assert!(output.is_ok(), "{output:?}");
    }
}

/// The bench's event as the plugin floor lowers it: the runtime's `event()`
/// with an id of the same length as `new_id`'s.
fn floor_event() -> FloorEvent {
    let event = event();
    FloorEvent {
        id: "0123456789abcdef0123456789abcdef".into(),
        kind: event.kind,
        payload: event.payload,
        occurred_at_ms: event.occurred_at_ms,
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of `samples`, in microseconds.
fn median(samples: &mut [Duration]) -> f64 {
    micros(percentile(samples, 0.5))
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

/// One GET of the loopback server's `/ping` with plain reqwest, body read.
async fn plain_get(client: &reqwest::Client, url: &str) {
    let body = client.get(url).send().await.expect("send").bytes().await;
    assert_eq!(&body.expect("body")[..], b"pong");
}

/// The probe, allowed to call `origin`.
fn probe_calling(rt: &tokio::runtime::Runtime, origin: &str) -> Setup {
    setup(
        rt,
        "tests/plugins/probe",
        "probe",
        true,
        &[origin.to_owned()],
    )
}

/// The probe's `gets`: `times` GETs of `url`, one after another.
fn gets(url: &str, times: u32) -> Event {
    Event::new(
        "gets",
        serde_json::json!({"url": url, "times": times}).to_string(),
    )
}

fn event() -> Event {
    Event::new("bench", r#"{"n":1}"#)
}

/// `FRESH_SAMPLES` timings of `run` after 1,000 untimed warm-up runs.
async fn samples(run: impl AsyncFn()) -> Vec<Duration> {
    for _ in 0..1000 {
        run().await;
    }
    let mut samples = Vec::with_capacity(FRESH_SAMPLES);
    for _ in 0..FRESH_SAMPLES {
        let start = Instant::now();
        run().await;
        samples.push(start.elapsed());
    }
    samples
}

async fn fresh_samples(setup: &Setup) -> Vec<Duration> {
    samples(async || {
        let record = setup.runtime.execute(&setup.plugin, event()).await;
        assert!(record.is_ok(), "{record:?}");
    })
    .await
}

async fn floor_samples(floor: &Floor) -> Vec<Duration> {
    samples(async || assert_eq!(floor.run(1).await, 42)).await
}

/// `JUNCTION_BENCH_PROFILE=gets` loops executions of 20 invoke-url GETs,
/// `first` executions of one and `none` of none, `refused` executions of 20
/// calls the host refuses before sending, and `reqwest` the same GETs with
/// plain reqwest, for a profiler.
fn profile_calls(rt: &tokio::runtime::Runtime, what: &str) {
    let origin = rt.block_on(loopback_server());
    let url = format!("{origin}/ping");
    // On a runtime worker, where the host runs executions.
    if what == "reqwest" {
        let client = junction_host::runtime::outbound_client(LOOPBACK).expect("client");
        let profiled = rt.spawn(async move {
            for _ in 0..PROFILED_EXECUTIONS * CALLS_PER_EXECUTION {
                plain_get(&client, &url).await;
            }
        });
        rt.block_on(profiled).expect("the profiled loop");
        return;
    }
    let caller = probe_calling(rt, &origin);
    let target = if what == "refused" {
        REFUSED_URL.to_owned()
    } else {
        url
    };
    // `first` and `none`: executions of one GET and of none, to tell what
    // an execution's first call costs.
    let (calls, executions) = match what {
        "first" => (1, 10 * PROFILED_EXECUTIONS),
        "none" => (0, 10 * PROFILED_EXECUTIONS),
        _ => (CALLS_PER_EXECUTION, PROFILED_EXECUTIONS),
    };
    let profiled = rt.spawn(async move {
        for _ in 0..executions {
            let record = caller
                .runtime
                .execute(&caller.plugin, gets(&target, calls))
                .await;
            assert!(record.is_ok(), "{record:?}");
        }
    });
    rt.block_on(profiled).expect("the profiled loop");
}

/// The samples of the interleaved invoke-url rounds.
#[derive(Default)]
struct CallTimes {
    refused: Vec<Duration>,
    none: Vec<Duration>,
    one: Vec<Duration>,
    twenty: Vec<Duration>,
    plain: Vec<Duration>,
    plain_one: Vec<Duration>,
    floor_none: Vec<Duration>,
    floor_one: Vec<Duration>,
    floor_twenty: Vec<Duration>,
}

/// Interleaved rounds, so every side sees the same machine: refused calls,
/// the calling floor, executions of 0, 1 and 20 GETs, 20 plain GETs.
async fn call_rounds(
    caller: &Setup,
    calling_floor: &Floor,
    client: reqwest::Client,
    url: String,
) -> CallTimes {
    let fetch = |times: u32| gets(&url, times);
    let mut t = CallTimes::default();
    for _ in 0..CALL_ROUNDS {
        let start = Instant::now();
        let record = caller
            .runtime
            .execute(&caller.plugin, gets(REFUSED_URL, CALLS_PER_EXECUTION))
            .await;
        t.refused.push(start.elapsed());
        assert!(
            record.is_ok() && record.calls.iter().all(|c| c.error.is_some()),
            "{record:?}"
        );

        let start = Instant::now();
        calling_floor.run(0).await;
        t.floor_none.push(start.elapsed());
        let start = Instant::now();
        assert_eq!(calling_floor.run(1).await, 1);
        t.floor_one.push(start.elapsed());
        let start = Instant::now();
        let ok = calling_floor.run(CALLS_PER_EXECUTION).await;
        t.floor_twenty.push(start.elapsed());
        assert_eq!(ok, CALLS_PER_EXECUTION);

        let start = Instant::now();
        let record = caller.runtime.execute(&caller.plugin, fetch(0)).await;
        t.none.push(start.elapsed());
        assert!(record.is_ok(), "{record:?}");

        let start = Instant::now();
        let record = caller.runtime.execute(&caller.plugin, fetch(1)).await;
        t.one.push(start.elapsed());
        assert!(record.is_ok() && record.calls.len() == 1, "{record:?}");

        let start = Instant::now();
        let record = caller
            .runtime
            .execute(&caller.plugin, fetch(CALLS_PER_EXECUTION))
            .await;
        t.twenty.push(start.elapsed());
        assert!(
            record.is_ok() && record.calls.iter().all(|c| c.status == Some(200)),
            "{record:?}"
        );

        let start = Instant::now();
        for call in 0..CALLS_PER_EXECUTION {
            if call == 1 {
                t.plain_one.push(start.elapsed());
            }
            plain_get(&client, &url).await;
        }
        t.plain.push(start.elapsed());
    }
    t
}

/// Prints the invoke-url figures of one set of rounds; `place` says where
/// they ran.
fn report_calls(place: &str, mut t: CallTimes) {
    let n = f64::from(CALLS_PER_EXECUTION);
    let refused_per_call = (median(&mut t.refused) - median(&mut t.none)) / n;
    figure(
        &format!("invoke-url refused before sending, per call{place}"),
        format!("{refused_per_call:.2} us"),
        "-",
        "the host's own cost of a call: guest, canonical ABI, checks, record".into(),
    );
    // The first call of a round is slower on every side (the workers
    // have gone to sleep between rounds; a guest also sets up its
    // allocator and the SDK once): each side's per-call cost is what
    // the 19 calls after its first one take.
    let per_call = (median(&mut t.twenty) - median(&mut t.one)) / (n - 1.0);
    let first_call = median(&mut t.one) - median(&mut t.none);
    let floor_per_call = (median(&mut t.floor_twenty) - median(&mut t.floor_one)) / (n - 1.0);
    let floor_first_call = median(&mut t.floor_one) - median(&mut t.floor_none);
    let plain_per_call = (median(&mut t.plain) - median(&mut t.plain_one)) / (n - 1.0);
    figure(
        &format!("wasmtime floor: a bare async host import making the same GET{place}"),
        format!("{floor_per_call:.1} us per call (first call {floor_first_call:.1} us)"),
        "-",
        format!(
            "{:.3}x plain reqwest; invoke-url is {:.3}x this floor",
            floor_per_call / plain_per_call,
            per_call / floor_per_call
        ),
    );
    figure(
        &format!("invoke-url per call (loopback GET){place}"),
        format!("{per_call:.1} us (first call of an execution {first_call:.1} us)"),
        "<= 1.05x plain reqwest",
        format!(
            "{:.3}x plain reqwest ({plain_per_call:.1} us per GET, same client settings)",
            per_call / plain_per_call
        ),
    );
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

    if let Ok(plugin) = std::env::var("JUNCTION_BENCH_PROFILE") {
        if ["gets", "first", "none", "refused", "reqwest"].contains(&plugin.as_str()) {
            profile_calls(&rt, &plugin);
            return;
        }
        let (name, alone) = match plugin.strip_suffix("-floor") {
            Some(name) => (name, true),
            None => (plugin.as_str(), false),
        };
        let dir = if name == "hello" {
            "plugins/hello"
        } else {
            "tests/plugins/noop"
        };
        let profiled = setup(&rt, dir, name, true, &[]);
        let floor = PluginFloor::new(&profiled);
        let floor_event = floor_event();
        rt.block_on(async {
            for _ in 0..50_000 {
                if alone {
                    floor.run(&floor_event).await;
                } else {
                    profiled.runtime.execute(&profiled.plugin, event()).await;
                }
            }
        });
        return;
    }

    let pooled = setup(&rt, "plugins/hello", "hello", true, &[]);
    let on_demand = setup(&rt, "plugins/hello", "hello", false, &[]);
    let noop = setup(&rt, "tests/plugins/noop", "noop", true, &[]);
    let floor = Floor::new(&pooled.runtime, BARE_FLOOR);
    let shaped_floor = Floor::new(&pooled.runtime, SHAPED_FLOOR);
    let noop_floor = PluginFloor::new(&noop);
    let hello_floor = PluginFloor::new(&pooled);
    let origin = rt.block_on(loopback_server());
    // Leaked: the rounds also run in a spawned task, which needs 'static.
    let caller: &'static Setup = Box::leak(Box::new(probe_calling(&rt, &origin)));
    let url = format!("{origin}/ping");
    let client = junction_host::runtime::outbound_client(LOOPBACK).expect("client");
    let calling_floor: &'static Floor = Box::leak(Box::new(Floor::calling(
        &pooled.runtime,
        client.clone(),
        url.clone(),
    )));

    rt.block_on(async {
        let mut floor_times = floor_samples(&floor).await;
        let mut shaped_times = floor_samples(&shaped_floor).await;
        let floor_event = floor_event();
        let mut noop_floor_times = samples(async || noop_floor.run(&floor_event).await).await;
        let mut hello_floor_times = samples(async || hello_floor.run(&floor_event).await).await;
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
            (
                "wasmtime floor with hello's memory: 17 pages, 4 written",
                &mut shaped_times,
                "-",
            ),
            (
                "wasmtime floor with noop's own component, no host",
                &mut noop_floor_times,
                "-",
            ),
            (
                "wasmtime floor with hello's own component, no host",
                &mut hello_floor_times,
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
        // What the host adds to a plugin's own floor, and what the goal
        // would leave it: the floor is wasmtime and the guest alone.
        let hello_floor_p50 = median(&mut hello_floor_times);
        let hello_p50 = median(&mut hello_times);
        let (gap, side) = if hello_floor_p50 > 6.0 {
            (hello_floor_p50 - 6.0, "above")
        } else {
            (6.0 - hello_floor_p50, "below")
        };
        figure(
            "the host's own cost of a fresh execution",
            format!(
                "hello +{:.2} us, noop +{:.2} us over their components' floors",
                hello_p50 - hello_floor_p50,
                median(&mut noop_times) - median(&mut noop_floor_times),
            ),
            "-",
            format!(
                "hello is {:.2}x its component's floor, which alone is {gap:.2} us {side} 6 us",
                hello_p50 / hello_floor_p50,
            ),
        );

        report_calls(
            "",
            call_rounds(caller, calling_floor, client.clone(), url.clone()).await,
        );
    });
    // Executions run on the runtime's workers in the host (handlers, event
    // workers), not in `block_on` on a thread of their own: the same rounds
    // again from a spawned task.
    let on_worker = rt
        .block_on(rt.spawn(call_rounds(caller, calling_floor, client, url)))
        .expect("the worker's rounds");
    report_calls(", on a runtime worker", on_worker);

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
    group.bench_function("floor", |b| b.to_async(&rt).iter(|| floor.run(1)));
    group.finish();
    criterion.final_summary();
}
