//! The sandbox plugins run in: one async wasmtime [`Engine`] (pooling
//! allocator, epoch interruption), a [`Linker`] that offers exactly the
//! `junction:plugin` imports plus WASI p2 without ambient authority, and
//! [`Runtime::execute`], which runs one event through a plugin in a fresh
//! wasmtime store and returns an [`ExecutionRecord`]. Each WIT interface's
//! host side is one module with its own state and its own `add_to_linker`
//! (wasmtime's `HasData` pattern): [`http`], [`connections`], [`kv`],
//! [`log`]; [`HostState`] only holds one state per interface beside WASI's.
//! Everything the sandbox needs from the rest of the host comes through the
//! traits in [`ports`]; this crate knows neither the store nor OAuth.

mod bindings;
mod connections;
mod fit;
mod http;
mod kv;
mod language;
mod limiter;
mod log;
pub mod ports;
mod stdio;
mod world;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
    Store as WasmStore, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use junction_core::Manifest;
use junction_core::now_ms;

pub use connections::LookupError;
pub use http::build_client as outbound_client;
pub use junction_core::record::{
    CallRecord, ExecutionRecord, Failure, LogLine, MAX_CALL_RECORDS, MAX_CALL_TEXT,
    MAX_FAILURE_MESSAGE, Outcome, max_stored_bytes,
};
pub use junction_core::{Event, HostPattern, Limits, new_id};
pub use language::component_language;
pub use wasmtime::component::Component;
pub use world::LoadError;

use bindings::PluginPre;
use limiter::MemoryLimiter;
use stdio::LogBook;

/// How often the epoch ticks: the granularity of deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Use the pooling allocator (falls back to on-demand if it cannot reserve).
    pub pooling: bool,
    /// Executions (instances) at once; more wait.
    pub max_instances: u32,
    /// Limits of plugins that do not set their own.
    pub defaults: Limits,
    /// The most any plugin may ask for.
    pub ceiling: Limits,
    /// Which addresses outbound calls may reach.
    pub network: junction_net::NetworkPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let defaults = Limits::default();
        let ceiling = Limits::default_ceiling();
        RuntimeConfig {
            pooling: true,
            max_instances: 64,
            defaults,
            ceiling,
            network: junction_net::NetworkPolicy::default(),
        }
    }
}

/// What a plugin was granted: the connections it may use and the origins it
/// may call without credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Link names of the organisation's connections it was granted.
    pub connections: Vec<String>,
    /// Link names its manifest asks for: in an end user's execution, that
    /// end user's connections of these names (they are the end user's to
    /// give, and appear after the deploy, as end users connect).
    pub requested: Vec<String>,
    /// Of the granted ones, those an end user's execution may take from the
    /// organisation when the end user has none of their own.
    pub org_fallback: Vec<String>,
    /// Origins without credentials.
    pub allowed_hosts: Vec<HostPattern>,
}

/// A plugin ready to run: its component pre-linked once, plus what it may do.
pub struct LoadedPlugin {
    name: String,
    pre: PluginPre<HostState>,
    grants: Grants,
    limits: Limits,
    component_bytes: usize,
}

impl LoadedPlugin {
    /// The plugin's name (its kv namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it was granted.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Size of the component it was loaded from.
    pub fn component_bytes(&self) -> usize {
        self.component_bytes
    }
}

/// What the runtime shares with every execution's host functions.
pub(crate) struct Shared {
    ports: ports::Ports,
    http: reqwest::Client,
    network: junction_net::NetworkPolicy,
    /// Where kv writes are committed; one transaction each when unset.
    kv_committer: std::sync::OnceLock<Arc<dyn ports::KvCommitter>>,
}

/// Errors setting the runtime up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot link the plugin interfaces")]
    Link(#[source] wasmtime::Error),
    #[error("cannot start the epoch ticker")]
    Ticker(#[source] std::io::Error),
    #[error("cannot build the HTTP client")]
    Http(#[from] reqwest::Error),
}

/// The plugin runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    instances: Arc<Semaphore>,
    shared: Arc<Shared>,
    config: RuntimeConfig,
    pooling: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Sets up the engine, the linker and the epoch ticker.
    pub fn new(ports: ports::Ports, config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let (engine, pooling) = build_engine(&config)?;
        let linker = build_linker(&engine).map_err(RuntimeError::Link)?;
        let http = http::build_client(config.network)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let weak_engine = engine.weak();
        let stop = ticker_stop.clone();
        // A plain thread, so the deadline holds even when every tokio worker
        // is busy running guests.
        std::thread::Builder::new()
            .name("junction-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(RuntimeError::Ticker)?;

        Ok(Runtime {
            engine,
            linker,
            instances: Arc::new(Semaphore::new(config.max_instances as usize)),
            shared: Arc::new(Shared {
                ports,
                http,
                network: config.network,
                kv_committer: std::sync::OnceLock::new(),
            }),
            config,
            pooling,
            ticker_stop,
        })
    }

    /// Sends plugins' kv writes to `committer` (the journal's group commit)
    /// from now on; only the first call takes effect.
    pub fn set_kv_committer(&self, committer: Arc<dyn ports::KvCommitter>) {
        if self.shared.kv_committer.set(committer).is_err() {
            tracing::warn!("the kv committer was already set; keeping the first");
        }
    }

    /// The engine (to precompile components with).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// Executions holding an instance slot right now.
    pub fn instances_in_use(&self) -> usize {
        (self.config.max_instances as usize).saturating_sub(self.instances.available_permits())
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Compiles `bytes` and checks it is a component of the `plugin` world.
    pub fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        world::compile(&self.engine, bytes)
    }

    /// Compiles `bytes` ahead of time into an artifact and loads it: the
    /// artifact is what the registry stores, the component what it runs.
    /// The component is checked against the `plugin` world.
    pub fn precompile(&self, bytes: &[u8]) -> Result<(Vec<u8>, Component), LoadError> {
        let artifact = world::precompile(&self.engine, bytes)?;
        let component = self.deserialize_own_artifact(&artifact)?;
        world::check_shape(&self.engine, &component)?;
        Ok((artifact, component))
    }

    /// Loads an artifact produced by [`Runtime::precompile`] of an engine
    /// with the same [`Runtime::compatibility_hash`].
    ///
    /// Only pass bytes this host produced: the caller must have verified
    /// their origin (the store checks a tag sealed with the master key),
    /// because an artifact is machine code that runs unchecked.
    pub fn deserialize_own_artifact(&self, artifact: &[u8]) -> Result<Component, LoadError> {
        // SAFETY: the artifact came from `Engine::precompile_component` of an
        // engine with the same compatibility hash (the documented contract of
        // this function); wasmtime also checks its own version header.
        unsafe { Component::deserialize(&self.engine, artifact) }
            .map_err(|e| LoadError::Compile(format!("cannot load the precompiled artifact: {e:#}")))
    }

    /// A stable hex digest of everything that makes an artifact loadable by
    /// this engine: artifacts are keyed by it, so a wasmtime upgrade or a
    /// configuration change recompiles instead of loading stale code.
    pub fn compatibility_hash(&self) -> String {
        let mut hasher = Sha256Hasher(sha2::Sha256::default());
        std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut hasher);
        hex::encode(sha2::Digest::finalize(hasher.0))
    }

    /// Pre-links a compiled component with what the plugin was granted.
    pub fn load(
        &self,
        name: &str,
        component: &Component,
        component_bytes: usize,
        grants: Grants,
        manifest: &Manifest,
    ) -> Result<LoadedPlugin, LoadError> {
        let limits = manifest
            .resolve_limits(&self.config.defaults, &self.config.ceiling)
            .map_err(LoadError::Manifest)?;
        fit::check(
            component,
            limits.memory_bytes,
            self.config.ceiling.memory_bytes,
            self.pooling.then_some(POOL_SLOTS),
        )?;
        let pre = world::instantiate_pre(&self.engine, &self.linker, component)?;
        Ok(LoadedPlugin {
            name: name.to_owned(),
            pre,
            grants,
            limits,
            component_bytes,
        })
    }

    /// Runs one event through `plugin` in a fresh store and records what happened.
    pub async fn execute(&self, plugin: &LoadedPlugin, event: Event) -> ExecutionRecord {
        let started_at_ms = now_ms();
        let started = Instant::now();
        let limits = &plugin.limits;
        let mut record = ExecutionRecord::start(new_id(), plugin.name(), &event, started_at_ms);

        if event.payload.len() > limits.payload_bytes {
            record.outcome = Outcome::failed(
                Failure::LimitExceeded,
                format!(
                    "the event payload is {} bytes, above the limit of {} bytes",
                    event.payload.len(),
                    limits.payload_bytes
                ),
            );
            return record.finish(started.elapsed());
        }

        // The pool has a fixed number of slots; waiting here is better than
        // failing an instantiation when it is full.
        let Ok(_permit) = self.instances.acquire().await else {
            record.outcome = Outcome::failed(Failure::Trap, "the runtime is shutting down".into());
            return record.finish(started.elapsed());
        };
        let deadline = started + limits.timeout;
        let logbook = LogBook::new(limits.log_bytes, limits.log_lines, started);
        // The record has its own copies by now; the guest gets the rest
        // without another copy of the payload.
        let Event {
            id: event_id,
            kind,
            payload,
            occurred_at_ms,
            end_user,
        } = event;
        let state = HostState::new(&self.shared, plugin, deadline, logbook.clone(), end_user);
        let mut store = WasmStore::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().deadline_hit = true;
                Err(wasmtime::Error::msg(DEADLINE_REACHED))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let wit_event = bindings::Event {
            id: event_id,
            kind,
            payload,
            occurred_at_ms,
        };
        let run = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, &wit_event).await
        };
        let result = tokio::time::timeout_at(deadline.into(), run).await;

        let state = store.into_data();
        record.peak_memory_bytes = state.limiter.peak();
        let made = state.http.finish();
        record.calls = made.calls;
        record.calls_dropped = made.dropped;
        record.missing_connections = state.connections.missing();
        record.outcome = match result {
            Err(_elapsed) => timeout_failure(limits),
            Ok(Ok(Ok(output))) => {
                junction_core::record::output_outcome(output, limits.payload_bytes)
            }
            Ok(Ok(Err(message))) => Outcome::failed(Failure::PluginError, message),
            Ok(Err(error)) => {
                if state.limiter.hit() {
                    Outcome::failed(
                        Failure::MemoryLimit,
                        format!(
                            "the plugin tried to use more than its {} MiB of memory",
                            limits.memory_bytes / (1024 * 1024)
                        ),
                    )
                } else if let Some(message) = made.ended {
                    Outcome::failed(Failure::LimitExceeded, message)
                } else if state.deadline_hit {
                    timeout_failure(limits)
                } else {
                    Outcome::failed(Failure::Trap, trap_message(&error))
                }
            }
        };
        let log = logbook.take();
        record.logs = log.lines;
        record.logs_truncated = log.truncated;
        record.logs_dropped = log.dropped;
        record.finish(started.elapsed())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The imports a plugin gets: WASI p2 and the `junction:plugin`
/// interfaces, one line each.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    http::add_to_linker(&mut linker, HostState::http)?;
    connections::add_to_linker(&mut linker, |state| &mut state.connections)?;
    kv::add_to_linker(&mut linker, |state| &mut state.kv)?;
    log::add_to_linker(&mut linker, |state| &mut state.log)?;
    Ok(linker)
}

/// Checks that `bytes` are a component of the `plugin` world, without a
/// store or a pool: what `junction build` runs after cargo.
pub fn validate_component(bytes: &[u8]) -> Result<(), LoadError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let linker = build_linker(&engine).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let component = world::compile(&engine, bytes)?;
    world::instantiate_pre(&engine, &linker, &component).map(|_| ())
}

/// Feeds `Hash` input into sha256, which, unlike `DefaultHasher`, is the same
/// in every build.
struct Sha256Hasher(sha2::Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    fn finish(&self) -> u64 {
        let digest = sha2::Digest::finalize(self.0.clone());
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }
}

/// The marker the epoch callback traps with when the deadline has passed.
const DEADLINE_REACHED: &str = "junction: execution deadline reached";

fn timeout_failure(limits: &Limits) -> Outcome {
    Outcome::failed(
        Failure::Timeout,
        format!(
            "the execution ran past its {} ms deadline",
            limits.timeout.as_millis()
        ),
    )
}

/// The trap's own message and the top of the wasm backtrace, without noise.
fn trap_message(error: &wasmtime::Error) -> String {
    let text = format!("{error:?}");
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(12)
        .collect();
    if lines.is_empty() {
        lines.push("the plugin trapped");
    }
    lines.join("\n")
}

/// What the instance pool gives each plugin instance; a component needing
/// more is refused at upload by [`fit::check`]. Measured: Rust's hello
/// starts with 1 memory of 17 pages and tables up to 68 elements, Python's
/// (componentize-py) 197 pages and 5,678 elements, JavaScript's
/// (componentize-js) 145 pages and 7,696 elements. Tables keep wasmtime's
/// default slot of 20,000 elements: a larger slot costs every instance a
/// larger reset.
const POOL_SLOTS: fit::PoolSlots = fit::PoolSlots {
    memories: 4,
    tables: 16,
    table_elements: 20_000,
};

fn build_engine(config: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    if config.pooling {
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.max_instances;
        // A Rust component holds a few core instances (the program, the WASI
        // adapter, shims); size every per-instance resource for that.
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 4)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_core_instances_per_component(16)
            .max_memories_per_component(POOL_SLOTS.memories)
            .max_tables_per_component(POOL_SLOTS.tables)
            .table_elements(POOL_SLOTS.table_elements as usize)
            .max_memory_size(config.ceiling.memory_bytes)
            // Reset small memories and tables with memset (guided by
            // PAGEMAP_SCAN where the kernel has it) instead of madvise: a
            // plugin's next execution then takes no page faults.
            .linear_memory_keep_resident(2 * 1024 * 1024)
            .table_keep_resident(64 * 1024)
            .pagemap_scan(Enabled::Auto)
            .decommit_batch_size(8);
        let mut pooled = wasm.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(err) => tracing::warn!(
                error = %err,
                "cannot reserve the instance pool; falling back to on-demand allocation"
            ),
        }
    }
    let engine = Engine::new(&wasm).map_err(RuntimeError::Engine)?;
    Ok((engine, false))
}

/// Everything one execution's host functions see: WASI's context and one
/// state per `junction:plugin` interface.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    /// Set by the epoch callback when it stops the guest at the deadline.
    deadline_hit: bool,
    http: http::HttpState,
    connections: connections::ConnectionsState,
    kv: kv::KvState,
    log: log::LogState,
}

impl HostState {
    fn new(
        shared: &Shared,
        plugin: &LoadedPlugin,
        deadline: Instant,
        logbook: LogBook,
        end_user: Option<String>,
    ) -> Self {
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        // No preopens, environment, arguments, sockets or name lookup: the
        // builder starts with none, and the network is closed explicitly.
        wasi.stdout(logbook.stream("stdout"))
            .stderr(logbook.stream("stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let limits = &plugin.limits;
        let quota = junction_core::kv::KvQuota {
            bytes: limits.kv_bytes,
            keys: limits.kv_keys,
        };
        HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            deadline_hit: false,
            http: http::HttpState::new(
                &plugin.name,
                shared.http.clone(),
                shared.network,
                plugin.grants.allowed_hosts.clone(),
                limits,
                deadline,
            ),
            connections: connections::ConnectionsState::new(
                &plugin.name,
                plugin.grants.clone(),
                end_user,
                shared.ports.connections.clone(),
            ),
            kv: kv::KvState::new(
                &plugin.name,
                quota,
                shared.ports.kv.clone(),
                shared.kv_committer.get().cloned(),
            ),
            log: log::LogState::new(logbook),
        }
    }

    fn http(&mut self) -> http::HttpView<'_> {
        http::HttpView {
            http: &mut self.http,
            connections: &self.connections,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
