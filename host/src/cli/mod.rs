//! The `junction` command line (clap): the server (`serve`), local commands
//! (`build`, `run`) and client commands that talk to a server over HTTP
//! (`deploy`, `invoke`, `plugins`, `executions`, `logs`, `connection`,
//! `service`, `token`, `event`, `events`, `deliveries`, `triggers`,
//! `trigger`, `hook`). Each command returns a [`CliError`] that names what
//! is wrong; `main` prints it and exits non-zero.

pub mod build;
pub mod client;
pub mod connection;
pub mod event;
pub mod events;
pub mod remote;
pub mod serve;
pub mod service;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use junction_core::manifest::Manifest;
use junction_runtime::{Grants, HostPattern, Runtime, RuntimeConfig};
use junction_store::Store;

/// The default data directory, relative to where `junction` runs.
pub use junction_server::config::DEFAULT_DATA_DIR;

/// Junction: run WebAssembly plugins that call third-party APIs through named connections.
#[derive(Debug, Parser)]
#[command(name = "junction", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a plugin (Rust, Python or JavaScript, told by its project file) into a component and check it against the plugin world.
    Build {
        /// The plugin's folder: a crate (`Cargo.toml`), a Python project (`pyproject.toml`) or a JavaScript one (`package.json`).
        dir: PathBuf,
        /// Where the component goes (cargo's target directory for Rust).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Run a plugin once on the local store and print the execution record.
    Run {
        /// A plugin project's folder (built first: Rust, Python or JavaScript) or a component `.wasm` file.
        plugin: PathBuf,
        /// The event: a JSON file `{"kind": ..., "payload": ...}`, or `-` for standard input.
        #[arg(long)]
        event: String,
        /// Where and with what it runs.
        #[command(flatten)]
        options: RunOptions,
    },
    /// Run the host: the API, plugin registry and runtime (Ctrl-C stops it gracefully).
    Serve(serve::ServeArgs),
    /// Build a plugin (or take a .wasm) and upload it to the server as a new version.
    Deploy(Box<remote::DeployArgs>),
    /// Run a deployed plugin now and print the execution.
    Invoke {
        /// The plugin's name.
        plugin: String,
        /// The event: a JSON file `{"kind": ..., "payload": ...}`, or `-` for standard input.
        #[arg(long)]
        event: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List deployed plugins.
    Plugins {
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List executions, newest first.
    Executions {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// `ok` or `failed`.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Show one execution: output, logs, calls and timing.
    Logs {
        /// The execution's id.
        id: String,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Make an earlier version of a plugin active.
    Rollback {
        /// The plugin's name.
        plugin: String,
        /// The version; the one before the active version by default.
        #[arg(long = "to")]
        version: Option<u32>,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Delete a plugin with every version, its artifacts and its kv data.
    Undeploy {
        /// The plugin's name.
        plugin: String,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Manage connections on the server.
    Connection {
        /// What to do with connections.
        #[command(subcommand)]
        command: connection::ConnectionCommand,
    },
    /// Manage services on the server.
    Service {
        /// What to do with services.
        #[command(subcommand)]
        command: service::ServiceCommand,
    },
    /// Send an event, or show one with its deliveries.
    Event {
        /// What to do.
        #[command(subcommand)]
        command: events::EventCommand,
    },
    /// Follow executions live.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// List deliveries (`--state dead` is the dead-letter list), or retry one.
    Deliveries {
        /// `queued`, `running`, `succeeded`, `dead` or `cancelled`.
        #[arg(long)]
        state: Option<String>,
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Queue this dead or cancelled delivery for one more attempt.
        #[arg(long, value_name = "DELIVERY_ID")]
        retry: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// List triggers (from manifests and the API).
    Triggers {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Add or remove a trigger through the API.
    Trigger {
        /// What to do.
        #[command(subcommand)]
        command: events::TriggerCommand,
    },
    /// Webhook secrets.
    Hook {
        /// What to do.
        #[command(subcommand)]
        command: events::HookCommand,
    },
    /// Manage the admin token.
    Token {
        /// What to do with the token.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage the master key that seals secrets at rest.
    Key {
        /// What to do with the key.
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// Master key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Re-seal every secret under a new master key (crash-safe; the old key
    /// opens secrets until the rotation completes).
    Rotate {
        /// The data directory (and, if the server runs, how to reach it).
        #[command(flatten)]
        server: client::ServerArgs,
    },
}

/// Admin token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a new admin token; the old one stops working.
    Rotate {
        /// The data directory (and, if the server runs, how to reach it).
        #[command(flatten)]
        server: client::ServerArgs,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error(transparent)]
    Event(#[from] event::EventFileError),
    #[error(transparent)]
    Store(#[from] junction_store::StoreError),
    #[error(transparent)]
    Runtime(#[from] junction_runtime::RuntimeError),
    #[error(transparent)]
    OAuthClient(#[from] junction_oauth::ClientError),
    #[error(transparent)]
    Load(#[from] junction_runtime::LoadError),
    #[error(transparent)]
    Manifest(#[from] junction_core::manifest::ManifestError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Server(#[from] junction_server::ServerError),
    #[error(transparent)]
    Config(#[from] serve::ConfigError),
    #[error(transparent)]
    Auth(#[from] junction_server::auth::AuthError),
    #[error("{0}")]
    Usage(String),
    #[error("the execution failed")]
    ExecutionFailed,
}

/// Runs a parsed command line.
pub async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Build { dir, target_dir } => {
            let built = build::build_plugin(&dir, target_dir.as_deref())?;
            let language = built.language.map(|l| format!("{l}, ")).unwrap_or_default();
            println!(
                "built {} ({language}{} bytes, sha256 {})",
                built.path.display(),
                built.size,
                built.sha256
            );
            println!("component matches the junction:plugin/plugin world");
            Ok(())
        }
        Command::Run {
            plugin,
            event,
            options,
        } => {
            let record = run_once(&plugin, &event, &options).await?;
            let text = serde_json::to_string_pretty(&record)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            println!("{text}");
            if record.is_ok() {
                Ok(())
            } else {
                Err(CliError::ExecutionFailed)
            }
        }
        Command::Serve(args) => {
            let config = args.resolve()?;
            junction_server::serve(config).await?;
            Ok(())
        }
        Command::Deploy(args) => remote::deploy(*args).await,
        Command::Invoke {
            plugin,
            event,
            server,
        } => remote::invoke(&plugin, event.as_deref(), &server).await,
        Command::Plugins { server } => remote::plugins(&server).await,
        Command::Executions {
            plugin,
            status,
            limit,
            server,
        } => remote::executions(plugin.as_deref(), status.as_deref(), limit, &server).await,
        Command::Logs { id, server } => remote::logs(&id, &server).await,
        Command::Rollback {
            plugin,
            version,
            server,
        } => remote::rollback(&plugin, version, &server).await,
        Command::Undeploy { plugin, server } => remote::undeploy(&plugin, &server).await,
        Command::Connection { command } => connection::dispatch(command).await,
        Command::Service { command } => service::dispatch(command).await,
        Command::Token {
            command: TokenCommand::Rotate { server },
        } => token::rotate(&server).await,
        Command::Key {
            command: KeyCommand::Rotate { server },
        } => token::rotate_key(&server).await,
        Command::Event { command } => events::event(command).await,
        Command::Events { command } => events::events(command).await,
        Command::Deliveries {
            state,
            plugin,
            limit,
            retry,
            server,
        } => events::deliveries(state, plugin, limit, retry, &server).await,
        Command::Triggers { plugin, server } => events::triggers(plugin, &server).await,
        Command::Trigger { command } => events::trigger(command).await,
        Command::Hook { command } => events::hook(command).await,
    }
}

/// Options of `junction run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOptions {
    /// The data directory (store, key file).
    #[arg(long, env = "JUNCTION_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The store: `redb:` (in the data directory) or `redb:/path/to/dir`.
    #[arg(long, env = "JUNCTION_STORE", default_value = "redb:")]
    pub store: junction_store::StoreUrl,
    /// Grant a connection beyond the manifest's (repeatable).
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// Allow an origin without credentials beyond the manifest's (repeatable).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// The plugin's project file with its manifest (`Cargo.toml`, `pyproject.toml` or `package.json`), for a `.wasm` file.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Cargo's target directory, when building.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    /// Let the plugin reach loopback and private addresses (local mocks).
    #[arg(long, env = "JUNCTION_ALLOW_PRIVATE_NETWORK", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_network: bool,
}

/// `junction run`: builds (for a folder) or reads (for a file) the plugin,
/// runs one event on the local store and returns the record.
pub async fn run_once(
    plugin: &Path,
    event_source: &str,
    options: &RunOptions,
) -> Result<junction_runtime::ExecutionRecord, CliError> {
    // Read the event first: a bad event file should not cost a build.
    let event = event::read_event(event_source)?;
    let built = if plugin.is_dir() {
        build::build_plugin(plugin, options.target_dir.as_deref())?
    } else {
        let mut built = build::check_file(plugin)?;
        if let Some(path) = &options.manifest {
            built.manifest = Manifest::from_file(path)?;
        }
        built
    };
    let store = Arc::new(
        Store::open_url(
            &options.store,
            &options.data_dir,
            junction_store::keys::KeyConfig::from_env(),
        )
        .await?,
    );
    let network = junction_net::NetworkPolicy {
        allow_private: options.allow_private_network,
    };
    let tokens = junction_app::ports::token_keeper(store.clone(), network)?;
    let runtime = Runtime::new(
        junction_app::ports::over_store(store, tokens),
        RuntimeConfig {
            pooling: false,
            network,
            ..RuntimeConfig::default()
        },
    )?;
    let bytes = std::fs::read(&built.path).map_err(|source| build::BuildError::Read {
        path: built.path.display().to_string(),
        source,
    })?;
    let component = runtime.compile(&bytes)?;
    let mut grants = Grants {
        connections: built.manifest.connections.clone(),
        requested: built.manifest.connections.clone(),
        org_fallback: built.manifest.org_fallback.clone(),
        allowed_hosts: Vec::new(),
    };
    grants.connections.extend(options.grants.iter().cloned());
    for host in built
        .manifest
        .allowed_hosts
        .iter()
        .chain(&options.allow_hosts)
    {
        grants
            .allowed_hosts
            .push(HostPattern::parse(host).map_err(CliError::Usage)?);
    }
    let loaded = runtime.load(
        &built.name,
        &component,
        bytes.len(),
        grants,
        &built.manifest,
    )?;
    Ok(runtime.execute(&loaded, event).await)
}
