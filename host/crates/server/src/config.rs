//! The server's resolved configuration and its built-in defaults (the
//! embedded default: `./junction-data`, 127.0.0.1:7070). Flags, environment
//! and the TOML file are read by the CLI, which builds a [`ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;

use junction_app::registry::DEFAULT_MAX_COMPONENT_BYTES;
use junction_events::journal::DEFAULT_RETENTION;

/// The data directory when none is given.
pub const DEFAULT_DATA_DIR: &str = "junction-data";

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// How long a console session lasts without a request.
pub const DEFAULT_CONSOLE_SESSION: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Which store to open (`redb:` in the data directory by default).
    pub store: junction_store::StoreUrl,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Largest component.
    pub max_component_bytes: usize,
    /// Execution records kept per plugin.
    pub execution_retention: u64,
    /// Plugin instances at once.
    pub max_instances: u32,
    /// Whether to use the pooling allocator.
    pub pooling: bool,
    /// Where browsers reach the host; `http://<listen address>` when absent.
    pub public_url: Option<String>,
    /// The embedding app's name, which connect-link pages show.
    pub app_name: String,
    /// Whether loopback and private addresses may be reached.
    pub allow_private_network: bool,
    /// Events kept.
    pub event_retention: u64,
    /// How deliveries run and retry.
    pub dispatch: junction_events::DispatchConfig,
    /// The clock schedules follow (a manual one in tests).
    pub clock: junction_events::Clock,
    /// How long a console session lasts without a request.
    pub console_session: std::time::Duration,
    /// Connection limits.
    pub connections: super::listen::ConnectionLimits,
    /// Requests per minute one client may make to the public routes
    /// (OAuth callback, webhooks).
    pub public_rate_per_minute: u32,
    /// At most one 401-caused refresh per connection in this interval.
    pub unauthorized_refresh: std::time::Duration,
    /// Bytes of execution records kept per plugin.
    pub execution_bytes: u64,
    /// How long finished events are kept.
    pub event_max_age: std::time::Duration,
}

/// Requests per minute one client may make to the public routes by default.
pub const DEFAULT_PUBLIC_RATE_PER_MINUTE: u32 = 120;

impl ServerConfig {
    /// The embedded default for `data_dir`, listening on `listen`.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            store: junction_store::StoreUrl::default(),
            listen,
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            execution_retention: DEFAULT_RETENTION,
            max_instances: 64,
            pooling: true,
            public_url: None,
            app_name: "Junction".to_owned(),
            allow_private_network: false,
            event_retention: junction_events::journal::DEFAULT_EVENT_RETENTION,
            dispatch: junction_events::DispatchConfig::default(),
            clock: junction_events::Clock::system(),
            console_session: DEFAULT_CONSOLE_SESSION,
            connections: super::listen::ConnectionLimits::default(),
            public_rate_per_minute: DEFAULT_PUBLIC_RATE_PER_MINUTE,
            unauthorized_refresh: junction_oauth::UNAUTHORIZED_INTERVAL,
            execution_bytes: junction_events::journal::DEFAULT_EXECUTION_BYTES,
            event_max_age: junction_events::journal::DEFAULT_EVENT_MAX_AGE,
        }
    }

    /// The network policy outbound clients follow.
    pub fn network(&self) -> junction_net::NetworkPolicy {
        junction_net::NetworkPolicy {
            allow_private: self.allow_private_network,
        }
    }
}
