//! The HTTP server (axum on tokio): the `/v1` API behind admin auth, its
//! OpenAPI document generated from the handlers, `/healthz`, `/metrics`,
//! incoming webhooks under `/hooks`, and the
//! lifecycle of `junction serve` — open the store, issue the admin token on
//! first start, load every active plugin from its artifact, serve, and on
//! shutdown let in-flight requests finish before the store is closed.

pub mod api_keys;
pub mod auth;
pub mod config;
mod connect;
pub mod connections;
pub(crate) mod console;
pub mod error;
pub mod events;
pub mod executions;
pub mod hooks;
mod html;
pub mod listen;
mod mcp;
pub mod oauth;
mod openapi;
pub mod plugins;
mod ratelimit;
pub mod services;
mod sync;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use junction_app::registry::{LoadReport, Registry, RegistryError};
use junction_events::metrics::Metrics;
use junction_events::{EventTasks, Events, EventsError, Journal, JournalError, Retention};
use junction_oauth::TokenKeeper;
use junction_runtime::{Runtime, RuntimeConfig, RuntimeError};
use junction_store::keys::KeyConfig;
use junction_store::{Change, Store, StoreError};

pub use auth::AdminAuth;
pub use config::ServerConfig;
use error::ApiError;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error(transparent)]
    OAuthClient(#[from] junction_oauth::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped with an error")]
    Serve(#[source] std::io::Error),
    #[error("the server task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error(
        "the store was still in use {0:?} after shutdown; its file stays open until the process exits"
    )]
    StoreStillInUse(Duration),
}

/// What every handler shares.
pub(crate) struct Shared {
    store: Arc<Store>,
    registry: Arc<Registry>,
    /// The refresh engine of OAuth connections.
    tokens: Arc<TokenKeeper>,
    events: Arc<Events>,
    auth: AdminAuth,
    config: ServerConfig,
    openapi: OnceLock<String>,
    oauth: junction_oauth::OAuth,
    /// Where browsers reach this host (for OAuth redirect URIs).
    public_url: String,
    /// Turns true when the server stops, ending live streams.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The web console's signed-in sessions.
    console: console::Sessions,
}

/// The handlers' state.
pub(crate) type AppState = Arc<Shared>;

/// The API description; paths are added from the handlers by `routes!`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Junction",
        description = "WebAssembly component plugins with managed third-party connections. Every /v1 route needs `Authorization: Bearer <admin token>`; `POST /v1/plugins/{name}/invoke` also takes an API key (`jck_…`) that names the plugin."
    ),
    modifiers(&BearerAuth),
    security(("admin_token" = [])),
    tags(
        (name = "plugins", description = "Upload, version and run plugins"),
        (name = "executions", description = "What ran and what happened"),
        (name = "events", description = "Events, their deliveries, triggers and webhooks"),
        (name = "connections", description = "Named, authorised accounts of services, the organisation's or an end user's (`?end_user=`)"),
        (name = "end-users", description = "The embedding app's users who have connections"),
        (name = "services", description = "Third-party APIs and how to authenticate to them"),
        (name = "api-keys", description = "Keys for apps and agents: invoke named plugins, never administer"),
        (name = "admin", description = "The admin token and the API description")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the whole router: `/v1` (authenticated), `/healthz`, fallbacks.
fn router(state: AppState) -> Router {
    let upload_limit = state.config.max_component_bytes + 1024 * 1024;
    let uploads = OpenApiRouter::new()
        .routes(routes!(plugins::upload_plugin))
        .layer(DefaultBodyLimit::max(upload_limit));
    let (v1, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(plugins::list_plugins))
        .routes(routes!(plugins::get_plugin, plugins::delete_plugin))
        .routes(routes!(plugins::rollback_plugin))
        .routes(routes!(plugins::invoke_plugin))
        .routes(routes!(executions::list_executions))
        .routes(routes!(executions::stream_executions))
        .routes(routes!(executions::get_execution))
        .routes(routes!(events::get_event))
        .routes(routes!(events::list_deliveries))
        .routes(routes!(events::retry_delivery))
        .routes(routes!(events::list_triggers, events::create_trigger))
        .routes(routes!(events::delete_trigger))
        .routes(routes!(hooks::set_hook_secret))
        .routes(routes!(
            connections::list_connections,
            connections::create_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::list_end_users))
        .routes(routes!(connections::delete_end_user))
        .routes(routes!(connections::end_user_connections))
        .routes(routes!(connect::create_connect_link))
        .routes(routes!(oauth::authorize_connection))
        .routes(routes!(oauth::refresh_connection))
        .routes(routes!(oauth::revoke_connection))
        .routes(routes!(services::list_services, services::create_service))
        .routes(routes!(
            services::get_service,
            services::update_service,
            services::delete_service
        ))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(rotate_token))
        .routes(routes!(rotate_key))
        .routes(routes!(openapi_json))
        .merge(uploads)
        .merge(
            OpenApiRouter::new()
                .routes(routes!(events::send_event))
                // The payload's own limit plus room for the envelope.
                .layer(DefaultBodyLimit::max(
                    junction_events::MAX_PAYLOAD_BYTES + 64 * 1024,
                )),
        )
        .split_for_parts();
    let mut doc = serde_json::to_value(&openapi).unwrap_or_default();
    openapi::tighten(&mut doc);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
    // Set once, here, before the router serves anything.
    let _ = state.openapi.set(text);

    let v1 = v1.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_caller,
    ));
    let hooks = Router::new()
        .route(
            "/hooks/{plugin}/{hook}",
            get(hooks::check_hook).post(hooks::signed_hook),
        )
        .route(
            "/hooks/{plugin}/{hook}/{secret}",
            get(hooks::check_secret_hook).post(hooks::secret_path_hook),
        )
        .layer(DefaultBodyLimit::max(hooks::MAX_HOOK_BODY));
    let limiter = ratelimit::PublicLimiter::new(state.config.public_rate_per_minute, &state.store);
    let public = Router::new()
        .route("/oauth/callback", get(oauth::callback))
        .route(
            "/connect/{token}",
            get(connect::connect_page).post(connect::connect_submit),
        )
        .merge(hooks)
        .route_layer(axum::middleware::from_fn_with_state(
            limiter,
            ratelimit::limit_public,
        ));
    let console = console::router(state.clone());
    let mcp = Router::new()
        .nest_service("/mcp", mcp::service(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp::require_caller,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(public)
        .merge(v1)
        .merge(mcp)
        .merge(console)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// One debug line per request: method, path (never the query, which may
/// carry a caller's secrets), status and time; and an error line for an
/// internal failure the response carries (see [`error::InternalFailure`]).
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(error::InternalFailure(detail)) = response.extensions().get() {
        tracing::error!(%method, path, error = %detail, "internal error");
    }
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// The path as logged: a webhook's secret segment and a connect link's
/// token (whoever holds it may connect an account) are replaced.
fn loggable_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() >= 5 && segments[1] == "hooks" {
        return format!("/hooks/{}/{}/<secret>", segments[2], segments[3]);
    }
    if segments.len() >= 3 && segments[1] == "connect" {
        return "/connect/<token>".to_owned();
    }
    path.to_owned()
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let runtime = state.registry.runtime();
    let text = state
        .events
        .metrics()
        .render(state.tokens.refresh_counts(), runtime.instances_in_use());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// `GET /healthz`: the server is up and serving.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "plugins": state.registry.active_count(),
    }))
}

/// A browser gets the console's page; a client the API's error.
async fn not_found(headers: axum::http::HeaderMap) -> axum::response::Response {
    if console::wants_html(&headers) {
        return console::not_found_page();
    }
    ApiError::not_found("no such route; the API is described at /v1/openapi.json").into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not take that method; see /v1/openapi.json",
    )
}

/// The API as an OpenAPI 3 document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "admin",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.openapi.get().cloned().unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
}

/// What a master key rotation did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RotatedKey {
    /// The id of the key that seals every secret now (a digest, not the key).
    key_id: String,
    /// The id of the key it replaced.
    previous_key_id: String,
    /// Sealed values re-sealed.
    resealed: usize,
}

/// Rotates the master key: every secret is re-sealed under a new key,
/// written to the data directory's `master.key` (crash-safe: the old key
/// opens secrets until the rotation completes). With a key from
/// `JUNCTION_MASTER_KEY`, the answer (409) says how to rotate it instead.
#[utoipa::path(
    post,
    path = "/v1/key/rotate",
    tag = "admin",
    responses(
        (status = 200, body = RotatedKey),
        (status = 401, body = error::ErrorBody),
        (status = 409, description = "The key comes from the environment", body = error::ErrorBody)
    )
)]
async fn rotate_key(State(state): State<AppState>) -> Result<axum::Json<RotatedKey>, ApiError> {
    if *state.store.key_source() == junction_store::keys::KeySource::Environment {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "key-from-environment",
            "the master key comes from JUNCTION_MASTER_KEY: move it to JUNCTION_PREVIOUS_MASTER_KEY, set JUNCTION_MASTER_KEY to a new key and restart",
        ));
    }
    let rotation = state.store.rotate_key().await?;
    Ok(axum::Json(RotatedKey {
        key_id: rotation.key_id,
        previous_key_id: rotation.previous_key_id,
        resealed: rotation.resealed,
    }))
}

/// Where the new admin token went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RotatedToken {
    /// The file the new token was written to (0600); the token itself is
    /// never sent over the API.
    token_file: String,
}

/// Rotates the admin token: the old one stops working at once, the new one
/// is written to the data directory's `admin-token` file.
#[utoipa::path(
    post,
    path = "/v1/token/rotate",
    tag = "admin",
    responses(
        (status = 200, body = RotatedToken),
        (status = 401, body = error::ErrorBody)
    )
)]
async fn rotate_token(State(state): State<AppState>) -> Result<axum::Json<RotatedToken>, ApiError> {
    state
        .auth
        .rotate(&state.store)
        .await
        .map_err(ApiError::internal)?;
    // Sessions were opened with the old token, on whichever host.
    state.console.end_all().await?;
    state.store.tell_other_hosts(Change::AdminToken).await;
    tracing::info!("admin token rotated");
    Ok(axum::Json(RotatedToken {
        token_file: auth::token_path(state.store.data_dir())
            .display()
            .to_string(),
    }))
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    issued_token: Option<String>,
    load_report: LoadReport,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    store: Weak<Store>,
    grace: Duration,
    sweeper: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    tokens: Arc<junction_oauth::TokenKeeper>,
    events: Arc<Events>,
    event_tasks: EventTasks,
    /// Applies the other hosts' changes, when the store is shared.
    follower: Option<sync::Follower>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Opens the store, loads the plugins, binds and starts serving.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let store = Arc::new(
            Store::open_url_with_lease(
                &config.store,
                &config.data_dir,
                KeyConfig::from_env(),
                config.dispatch.lease,
            )
            .await?,
        );
        let (auth, issued_token) = AdminAuth::load_or_issue(&store).await?;
        let tokens = Arc::new(
            TokenKeeper::new(store.clone(), junction_oauth::OAuth::new(config.network())?)
                .with_unauthorized_interval(config.unauthorized_refresh),
        );
        let runtime = Arc::new(Runtime::new(
            junction_app::ports::over_store(store.clone(), tokens.clone()),
            RuntimeConfig {
                pooling: config.pooling,
                max_instances: config.max_instances,
                network: config.network(),
                ..RuntimeConfig::default()
            },
        )?);
        let grace = runtime.config().ceiling.timeout + Duration::from_secs(5);
        let registry = Arc::new(Registry::new(
            runtime,
            store.clone(),
            config.max_component_bytes,
        ));
        let started = Instant::now();
        let load_report = registry.load_all().await?;
        tracing::info!(
            from_artifact = load_report.from_artifact,
            compiled = load_report.compiled,
            failed = load_report.failed,
            ms = started.elapsed().as_millis() as u64,
            "plugins loaded"
        );
        let metrics = Arc::new(Metrics::new());
        let journal = Arc::new(Journal::start(
            store.clone(),
            Retention {
                executions: config.execution_retention,
                execution_bytes: config.execution_bytes,
                events: config.event_retention,
                event_max_age: config.event_max_age,
            },
        )?);
        registry
            .runtime()
            .set_kv_committer(Arc::new(junction_app::ports::JournalKv(journal.clone())));
        let (events, event_tasks) = Events::start(
            store.clone(),
            registry.clone(),
            journal,
            metrics,
            config.dispatch,
            config.clock.clone(),
        )
        .await?;
        let follower = sync::follow(
            store.clone(),
            registry.clone(),
            events.clone(),
            auth.clone(),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let weak_store = Arc::downgrade(&store);
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let oauth = junction_oauth::OAuth::new(config.network())?;
        let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
        let console = console::Sessions::new(
            store.clone(),
            config.console_session,
            public_url.starts_with("https://"),
        );
        let state = Arc::new(Shared {
            console,
            store,
            registry,
            tokens: tokens.clone(),
            events: events.clone(),
            auth,
            config,
            openapi: OnceLock::new(),
            oauth,
            public_url,
            stopping: stopping_seen,
        });
        let keeper = tokens.clone();
        let connection_limits = state.config.connections;
        let app = router(state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Tokens of idle and expiring connections are refreshed in the
        // background; the task ends with the server.
        let (stop_sweeping, mut sweeping_stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = tokio::spawn(async move {
            let mut every = tokio::time::interval(junction_oauth::refresh::SWEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // Stop only between sweeps: a refresh is never cut off.
                tokio::select! {
                    _ = every.tick() => {}
                    _ = &mut sweeping_stopped => break,
                }
                let report = tokens.sweep().await;
                if report.refreshed + report.failed > 0 {
                    tracing::info!(
                        refreshed = report.refreshed,
                        failed = report.failed,
                        "token sweep"
                    );
                }
            }
        });
        let task = tokio::spawn(async move {
            listen::serve(listener, app, connection_limits, async move {
                let _ = stopped.await;
            })
            .await;
            Ok::<(), std::io::Error>(())
        });
        tracing::info!(%addr, "listening");
        Ok(Server {
            addr,
            issued_token,
            load_report,
            stop,
            task,
            store: weak_store,
            grace,
            sweeper: (stop_sweeping, sweeper),
            tokens: keeper,
            events,
            event_tasks,
            follower,
            stopping,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin token, when this start issued it (the first start).
    pub fn issued_token(&self) -> Option<&str> {
        self.issued_token.as_deref()
    }

    /// The refresh engine (its background sweep runs every minute).
    pub fn tokens(&self) -> &Arc<junction_oauth::TokenKeeper> {
        &self.tokens
    }

    /// The event machinery (its clock, trigger index and dispatcher).
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// How the stored plugins were loaded at start.
    pub fn load_report(&self) -> LoadReport {
        self.load_report
    }

    /// Stops accepting connections, lets in-flight requests finish (each
    /// execution ends by its deadline), writes the queued execution records
    /// and closes the store.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stopping.send(true);
        if let Some(follower) = self.follower {
            follower.stop().await;
        }
        let (stop_sweeping, sweeper) = self.sweeper;
        let _ = stop_sweeping.send(());
        let _ = sweeper.await;
        // The keeper holds the store; let it go so the file can close.
        drop(self.tokens);
        let _ = self.stop.send(());
        let mut task = self.task;
        // Requests get as long as the longest execution may run; a client
        // that keeps a connection open past that is cut off.
        match tokio::time::timeout(self.grace, &mut task).await {
            Ok(joined) => joined
                .map_err(ServerError::Task)?
                .map_err(ServerError::Serve)?,
            Err(_) => {
                tracing::warn!(
                    grace_s = self.grace.as_secs(),
                    "connections still open after the grace period; closing them"
                );
                task.abort();
                let _ = task.await;
            }
        }
        // Running deliveries finish (by their deadline); queued ones stay
        // in the store for the next start.
        self.events.stop(self.event_tasks).await;
        drop(self.events);
        // Blocking tasks that still hold the store finish within moments;
        // wait for them so the redb file is closed when this returns.
        let waited = Instant::now();
        while self.store.strong_count() > 0 && waited.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if self.store.strong_count() > 0 {
            // The redb file stays open (and locked) until the process exits.
            return Err(ServerError::StoreStillInUse(waited.elapsed()));
        }
        Ok(())
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let data_dir = config.data_dir.clone();
    let server = Server::start(config).await?;
    if let Some(token) = server.issued_token() {
        // Shown once; afterwards it is only in the 0600 token file.
        println!(
            "admin token (shown once, also in {}): {token}",
            auth::token_path(&data_dir).display()
        );
    }
    let report = server.load_report();
    println!(
        "junction listening on http://{} (data in {}, {} plugins loaded)",
        server.addr(),
        data_dir.display(),
        report.from_artifact + report.compiled
    );
    shutdown_signal().await;
    println!("shutting down: finishing in-flight requests");
    server.shutdown().await
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

/// Most items one list returns.
const MAX_PAGE: usize = 1000;

/// A list's `limit`: 50 when absent, otherwise 1 to [`MAX_PAGE`].
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    Ok(limit)
}

/// Awaits store work, its error as the API's. The store's backend runs
/// blocking work off the async workers itself.
pub(crate) async fn stored<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, ApiError> {
    work.await.map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything logged while the test's subscriber is the default.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn failing() -> Result<(), ApiError> {
        Err(ApiError::internal("disk on fire at /var/lib/x"))
    }

    #[tokio::test]
    async fn an_internal_failure_is_logged_once_by_the_request_log_and_never_answered() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let failure = ApiError::internal("disk on fire at /var/lib/x");
        drop(failure);
        assert!(
            captured.0.lock().unwrap().is_empty(),
            "building the error logs nothing"
        );

        let app = Router::new()
            .route("/hooks/p/h/s3cr3t_path", get(failing))
            .layer(axum::middleware::from_fn(log_request));
        let response = tower::ServiceExt::oneshot(
            app,
            axum::http::Request::get("/hooks/p/h/s3cr3t_path")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("disk on fire"), "{body}");
        assert!(body.contains("see its log"), "{body}");

        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{log}");
        assert!(errors[0].contains("disk on fire at /var/lib/x"), "{log}");
        assert!(
            !log.contains("s3cr3t_path"),
            "a hook's secret path is not logged: {log}"
        );
    }
}
