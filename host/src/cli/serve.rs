//! `junction serve`'s flags: built-in defaults, overridden by a TOML file
//! (`--config`), overridden by `JUNCTION_*` environment variables, overridden
//! by flags. clap reads flags and environment together; the file fills in
//! what neither set. The result is the server's [`ServerConfig`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use junction_server::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, ServerConfig};

/// Flags (and their environment variables) of `junction serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (kebab-case keys).
    #[arg(long, env = "JUNCTION_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (redb file, key file, admin token) [default: junction-data].
    #[arg(long, env = "JUNCTION_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where state is kept: `redb:` (the redb file in the data directory)
    /// or `redb:/path/to/dir` [default: redb:].
    #[arg(long, env = "JUNCTION_STORE")]
    pub store: Option<junction_store::StoreUrl>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, env = "JUNCTION_LISTEN")]
    pub listen: Option<String>,
    /// Largest component upload, in MiB [default: 64].
    #[arg(long, env = "JUNCTION_MAX_UPLOAD_MB")]
    pub max_upload_mb: Option<u64>,
    /// Execution records kept per plugin [default: 10000].
    #[arg(long, env = "JUNCTION_EXECUTION_RETENTION")]
    pub execution_retention: Option<u64>,
    /// Plugin instances running at once [default: 64].
    #[arg(long, env = "JUNCTION_MAX_INSTANCES")]
    pub max_instances: Option<u32>,
    /// The URL browsers reach this host at, for OAuth redirect URIs
    /// [default: http://<listen address>].
    #[arg(long, env = "JUNCTION_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The app's name that connect-link pages show to end users [default: Junction].
    #[arg(long, env = "JUNCTION_APP_NAME")]
    pub app_name: Option<String>,
    /// Let plugins and token endpoints reach loopback and private addresses
    /// (local mocks, on-premises APIs). Link-local and metadata addresses stay refused.
    #[arg(long, env = "JUNCTION_ALLOW_PRIVATE_NETWORK", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_network: bool,
    /// Events kept (beyond it the oldest finished ones go) [default: 100000].
    #[arg(long, env = "JUNCTION_EVENT_RETENTION")]
    pub event_retention: Option<u64>,
    /// Deliveries running at once over all plugins [default: 64].
    #[arg(long, env = "JUNCTION_DISPATCH_CONCURRENCY")]
    pub dispatch_concurrency: Option<usize>,
    /// Deliveries of one plugin running at once, unless its manifest sets
    /// `limits.concurrency` [default: 16].
    #[arg(long, env = "JUNCTION_PLUGIN_CONCURRENCY")]
    pub plugin_concurrency: Option<usize>,
    /// Delay before the first retry of a failed delivery, in milliseconds;
    /// each later retry doubles it, with jitter, up to 10 minutes [default: 1000].
    #[arg(long, env = "JUNCTION_RETRY_BASE_MS")]
    pub retry_base_ms: Option<u64>,
    /// With several hosts on one PostgreSQL: how long, in milliseconds, a
    /// host holds a delivery without renewing its lease (it renews every
    /// third); a host that dies has its deliveries run elsewhere this long
    /// after [default: 30000].
    #[arg(long, env = "JUNCTION_DELIVERY_LEASE_MS")]
    pub delivery_lease_ms: Option<u64>,
    /// Seconds a web console session lasts without a request [default: 43200, 12 hours].
    #[arg(long, env = "JUNCTION_CONSOLE_SESSION_SECS")]
    pub console_session_secs: Option<u64>,
    /// Connections open at once; more wait to be accepted [default: 1024].
    #[arg(long, env = "JUNCTION_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers [default: 10].
    #[arg(long, env = "JUNCTION_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Requests per minute one client address may make to the OAuth
    /// callback and to webhooks [default: 120].
    #[arg(long, env = "JUNCTION_PUBLIC_RATE_PER_MINUTE")]
    pub public_rate_per_minute: Option<u32>,
    /// Seconds between two refreshes of one connection caused by 401s [default: 30].
    #[arg(long, env = "JUNCTION_UNAUTHORIZED_REFRESH_SECS")]
    pub unauthorized_refresh_secs: Option<u64>,
    /// MiB of execution records kept per plugin (beyond it the oldest go) [default: 64].
    #[arg(long, env = "JUNCTION_EXECUTION_RETENTION_MB")]
    pub execution_retention_mb: Option<u64>,
    /// Days finished events (dead letters included) are kept [default: 7].
    #[arg(long, env = "JUNCTION_EVENT_RETENTION_DAYS")]
    pub event_retention_days: Option<u64>,
}

/// The same settings in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    store: Option<String>,
    listen: Option<String>,
    max_upload_mb: Option<u64>,
    execution_retention: Option<u64>,
    max_instances: Option<u32>,
    public_url: Option<String>,
    app_name: Option<String>,
    allow_private_network: Option<bool>,
    event_retention: Option<u64>,
    dispatch_concurrency: Option<usize>,
    plugin_concurrency: Option<usize>,
    retry_base_ms: Option<u64>,
    delivery_lease_ms: Option<u64>,
    console_session_secs: Option<u64>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    public_rate_per_minute: Option<u32>,
    unauthorized_refresh_secs: Option<u64>,
    execution_retention_mb: Option<u64>,
    event_retention_days: Option<u64>,
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("store: {0}")]
    Store(#[from] junction_store::StoreUrlError),
    #[error("listen address `{0}` is not host:port (e.g. 127.0.0.1:7070)")]
    Listen(String),
    #[error("{0} must be above 0")]
    Zero(&'static str),
    #[error("{setting} must be at least {at_least}")]
    TooSmall {
        setting: &'static str,
        at_least: u64,
    },
    #[error("public URL `{0}` is not usable: {1}")]
    PublicUrl(String, String),
    #[error("app name `{0}` must be 1 to 100 characters without control characters")]
    AppName(String),
}

impl ServeArgs {
    /// Resolves flags, environment, file and defaults, in that order.
    pub fn resolve(&self) -> Result<ServerConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = self
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = match (&self.store, &file.store) {
            (Some(url), _) => url.clone(),
            (None, Some(text)) => text.parse()?,
            (None, None) => junction_store::StoreUrl::default(),
        };
        let mut config = ServerConfig::new(data_dir, listen);
        config.store = store;
        if let Some(mb) = self.max_upload_mb.or(file.max_upload_mb) {
            if mb == 0 {
                return Err(ConfigError::Zero("max-upload-mb"));
            }
            config.max_component_bytes =
                usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        }
        if let Some(n) = self.execution_retention.or(file.execution_retention) {
            if n == 0 {
                return Err(ConfigError::Zero("execution-retention"));
            }
            config.execution_retention = n;
        }
        if let Some(n) = self.max_instances.or(file.max_instances) {
            if n == 0 {
                return Err(ConfigError::Zero("max-instances"));
            }
            config.max_instances = n;
        }
        if let Some(n) = self.event_retention.or(file.event_retention) {
            if n == 0 {
                return Err(ConfigError::Zero("event-retention"));
            }
            config.event_retention = n;
        }
        if let Some(n) = self.dispatch_concurrency.or(file.dispatch_concurrency) {
            if n == 0 {
                return Err(ConfigError::Zero("dispatch-concurrency"));
            }
            config.dispatch.global = n;
        }
        if let Some(n) = self.plugin_concurrency.or(file.plugin_concurrency) {
            if n == 0 {
                return Err(ConfigError::Zero("plugin-concurrency"));
            }
            config.dispatch.per_plugin = n;
        }
        if let Some(ms) = self.retry_base_ms.or(file.retry_base_ms) {
            if ms == 0 {
                return Err(ConfigError::Zero("retry-base-ms"));
            }
            config.dispatch.retry_base = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = self.delivery_lease_ms.or(file.delivery_lease_ms) {
            if ms < 100 {
                return Err(ConfigError::TooSmall {
                    setting: "delivery-lease-ms",
                    at_least: 100,
                });
            }
            config.dispatch.lease = std::time::Duration::from_millis(ms);
        }
        if let Some(secs) = self.console_session_secs.or(file.console_session_secs) {
            if secs == 0 {
                return Err(ConfigError::Zero("console-session-secs"));
            }
            config.console_session = std::time::Duration::from_secs(secs);
        }
        if let Some(n) = self.max_connections.or(file.max_connections) {
            if n == 0 {
                return Err(ConfigError::Zero("max-connections"));
            }
            config.connections.max_connections = n;
        }
        if let Some(secs) = self
            .header_read_timeout_secs
            .or(file.header_read_timeout_secs)
        {
            if secs == 0 {
                return Err(ConfigError::Zero("header-read-timeout-secs"));
            }
            config.connections.header_read_timeout = std::time::Duration::from_secs(secs);
        }
        if let Some(n) = self.public_rate_per_minute.or(file.public_rate_per_minute) {
            if n == 0 {
                return Err(ConfigError::Zero("public-rate-per-minute"));
            }
            config.public_rate_per_minute = n;
        }
        if let Some(mb) = self.execution_retention_mb.or(file.execution_retention_mb) {
            if mb == 0 {
                return Err(ConfigError::Zero("execution-retention-mb"));
            }
            config.execution_bytes = mb.saturating_mul(1024 * 1024);
        }
        if let Some(days) = self.event_retention_days.or(file.event_retention_days) {
            if days == 0 {
                return Err(ConfigError::Zero("event-retention-days"));
            }
            config.event_max_age = std::time::Duration::from_secs(days.saturating_mul(86_400));
        }
        if let Some(secs) = self
            .unauthorized_refresh_secs
            .or(file.unauthorized_refresh_secs)
        {
            config.unauthorized_refresh = std::time::Duration::from_secs(secs);
        }
        config.allow_private_network =
            self.allow_private_network || file.allow_private_network.unwrap_or(false);
        if let Some(name) = self.app_name.clone().or(file.app_name) {
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(ConfigError::AppName(name));
            }
            config.app_name = name;
        }
        if let Some(public) = self.public_url.clone().or(file.public_url) {
            let parsed = url::Url::parse(&public)
                .map_err(|e| ConfigError::PublicUrl(public.clone(), e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::PublicUrl(public, "use http or https".into()));
            }
            config.public_url = Some(public.trim_end_matches('/').to_owned());
        }
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: shown,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_app::registry::DEFAULT_MAX_COMPONENT_BYTES;

    #[test]
    fn the_store_url_comes_from_the_flag_then_the_file_and_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junction.toml");
        std::fs::write(&path, "store = \"redb:/var/lib/from-file\"\n").unwrap();
        let from_file = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().store.to_string(),
            "redb:/var/lib/from-file"
        );
        let flag = ServeArgs {
            store: Some("redb:".parse().unwrap()),
            ..from_file
        };
        assert_eq!(
            flag.resolve().unwrap().store,
            junction_store::StoreUrl::default()
        );
        assert_eq!(
            ServeArgs::default().resolve().unwrap().store,
            junction_store::StoreUrl::default()
        );
        std::fs::write(&path, "store = \"mysql://x\"\n").unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(matches!(err, ConfigError::Store(_)), "{err}");
        assert!(err.to_string().contains("mysql"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junction.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nexecution-retention = 5\ndata-dir = \"/tmp/from-file\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9100".into()),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.execution_retention, 5);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(config.max_component_bytes, DEFAULT_MAX_COMPONENT_BYTES);

        let defaults = ServeArgs::default().resolve().unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(defaults.data_dir, PathBuf::from("junction-data"));

        std::fs::write(&path, "listen = 7\n").unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }
}
