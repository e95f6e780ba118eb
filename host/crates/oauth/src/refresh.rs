//! Keeping OAuth tokens usable: refresh ahead of expiry when a plugin uses a
//! connection, and once after the API answers 401 — unless the token was
//! already replaced meanwhile, or a 401 already caused a refresh of this
//! connection within the last [`UNAUTHORIZED_INTERVAL`]. Refresh is
//! single-flight per connection: one async lock per link name, and the
//! stored token is re-read after taking it; whoever waited on a refresh in
//! flight gets its outcome, success or failure, instead of starting another
//! (providers that rotate refresh tokens revoke the whole grant when one is
//! used twice; Zoho allows ten refreshes in ten minutes). After this host's
//! lock the store's is taken too ([`Store::lock_connection`]), so hosts
//! sharing a PostgreSQL store also refresh one at a time, and the token
//! re-read under it is whatever the last refresh, on any host, stored.
//! Revoking and the OAuth callback take the same locks, so a refresh in
//! flight cannot undo them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::flow::{FlowError, OAuth};
use junction_core::model::Freshness;
use junction_store::{AuthType, Connection, ConnectionKey, Credentials, Store, now_ms};

/// Refresh when the token expires within this margin.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Idle connections are refreshed at least this often: some providers drop
/// refresh tokens that go unused.
pub const IDLE_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// How often the background sweep looks at every connection.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// At most one refresh per connection caused by 401s in this interval.
pub const UNAUTHORIZED_INTERVAL: Duration = Duration::from_secs(30);

/// One connection's refresh lock and what its last refresh did.
#[derive(Default)]
struct Flight {
    /// Bumped (under the lock) each time a refresh ends.
    finished: std::sync::atomic::AtomicU64,
    state: Arc<tokio::sync::Mutex<FlightState>>,
}

#[derive(Default)]
struct FlightState {
    /// How the last refresh ended: `Err` holds its message.
    last: Option<Result<(), String>>,
    /// When a 401 last caused a refresh.
    last_unauthorized: Option<std::time::Instant>,
}

/// The lock of one connection, held: this host's, and then the store's,
/// which other hosts on a shared store take too.
struct Held {
    flight: Arc<Flight>,
    guard: tokio::sync::OwnedMutexGuard<FlightState>,
    /// `finished` when this caller started waiting.
    seen: u64,
    shared: Box<dyn junction_store::ConnectionLock>,
}

impl Held {
    /// Lets go of both locks, the store's first.
    async fn release(self) {
        self.shared.release().await;
    }
}

impl Held {
    /// The outcome of a refresh that ended while this caller waited.
    fn shared_outcome(&self) -> Option<Result<(), FlowError>> {
        use std::sync::atomic::Ordering::Acquire;
        if self.flight.finished.load(Acquire) == self.seen {
            return None;
        }
        self.guard
            .last
            .clone()
            .map(|r| r.map_err(FlowError::SharedFailure))
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Connections refreshed.
    pub refreshed: usize,
    /// Refreshes that failed (recorded on each connection).
    pub failed: usize,
}

/// The refresh engine shared by the runtime and the server.
pub struct TokenKeeper {
    store: Arc<Store>,
    oauth: OAuth,
    locks: Mutex<HashMap<ConnectionKey, Arc<Flight>>>,
    margin: Duration,
    unauthorized_interval: Duration,
    refreshed: std::sync::atomic::AtomicU64,
    refresh_failed: std::sync::atomic::AtomicU64,
}

fn access_token(connection: &Connection) -> Option<&str> {
    match &connection.credentials {
        Credentials::Oauth2 { access_token, .. } => Some(access_token.expose()),
        _ => None,
    }
}

fn expires_soon(connection: &Connection, margin: Duration) -> bool {
    match &connection.credentials {
        Credentials::Oauth2 {
            expires_at_ms: Some(at),
            ..
        } => *at <= now_ms() + margin.as_millis() as u64,
        // No known expiry: keep using it; a 401 triggers the refresh.
        _ => false,
    }
}

impl TokenKeeper {
    /// A keeper over `store`, refreshing with `oauth`'s client.
    pub fn new(store: Arc<Store>, oauth: OAuth) -> Self {
        TokenKeeper {
            store,
            oauth,
            locks: Mutex::new(HashMap::new()),
            margin: REFRESH_MARGIN,
            unauthorized_interval: UNAUTHORIZED_INTERVAL,
            refreshed: Default::default(),
            refresh_failed: Default::default(),
        }
    }

    /// The same keeper with another interval between 401-caused refreshes.
    pub fn with_unauthorized_interval(mut self, interval: Duration) -> Self {
        self.unauthorized_interval = interval;
        self
    }

    fn flight(&self, link: &ConnectionKey) -> Arc<Flight> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(link.clone()).or_default().clone()
    }

    /// Takes `link`'s refresh lock, owned, so it can outlive the caller:
    /// this host's first (one waiter per host asks the store), then the
    /// store's, so hosts sharing a store refresh one at a time too and the
    /// token re-read after this is the one the last refresh stored.
    async fn hold(&self, link: &ConnectionKey) -> Result<Held, FlowError> {
        let flight = self.flight(link);
        let seen = flight.finished.load(std::sync::atomic::Ordering::Acquire);
        let guard = flight.state.clone().lock_owned().await;
        let shared = self
            .store
            .lock_connection(link.end_user(), &link.link)
            .await?;
        Ok(Held {
            flight,
            guard,
            seen,
            shared,
        })
    }

    /// Refreshes in a task of its own that keeps the lock until the new
    /// tokens are stored and the outcome is noted for those waiting. A
    /// caller cut off meanwhile (an execution reaching its deadline) cannot
    /// leave a rotated refresh token half-stored, nor let a second refresh
    /// start with the old one.
    async fn refresh_holding(
        &self,
        held: Held,
        link: &ConnectionKey,
    ) -> Result<Connection, FlowError> {
        let store = self.store.clone();
        let oauth = self.oauth.clone();
        let link = link.clone();
        let task = tokio::spawn(async move {
            let Held {
                flight,
                mut guard,
                shared,
                ..
            } = held;
            let result = oauth.refresh(&store, &link).await;
            // The new tokens are stored: other hosts may go ahead.
            shared.release().await;
            guard.last = Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            flight
                .finished
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            result
        });
        let result = task
            .await
            .map_err(|e| FlowError::Misconfigured(format!("the refresh task failed: {e}")))?;
        let counter = if result.is_ok() {
            &self.refreshed
        } else {
            &self.refresh_failed
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// Refreshes that succeeded and that failed since the start, for metrics.
    pub fn refresh_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.refreshed.load(Relaxed),
            self.refresh_failed.load(Relaxed),
        )
    }

    async fn is_oauth(&self, connection: &Connection) -> bool {
        if matches!(connection.credentials, Credentials::Oauth2 { .. }) {
            return true;
        }
        self.store
            .service(&connection.service)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.auth_type == AuthType::Oauth2)
    }

    /// Refreshes `link` if its token expires within the margin.
    pub async fn ensure_fresh(&self, link: &ConnectionKey) -> Result<Freshness, FlowError> {
        let Some(connection) = self.store.connection(link.end_user(), &link.link).await? else {
            return Ok(Freshness::Unchanged);
        };
        // Cheap test first: only OAuth credentials have an expiry.
        if !expires_soon(&connection, self.margin) || !self.is_oauth(&connection).await {
            return Ok(Freshness::Unchanged);
        }
        let held = self.hold(link).await?;
        match self.fresh_under_lock(&held, link).await {
            Ok(None) => {
                self.refresh_holding(held, link).await?;
                Ok(Freshness::Refreshed)
            }
            done => {
                held.release().await;
                done.map(|answer| answer.unwrap_or(Freshness::Refreshed))
            }
        }
    }

    /// Under `link`'s lock: the answer when no refresh is needed (another
    /// caller or host refreshed meanwhile), `None` when one is.
    async fn fresh_under_lock(
        &self,
        held: &Held,
        link: &ConnectionKey,
    ) -> Result<Option<Freshness>, FlowError> {
        // A refresh that ended while this caller waited answers for it.
        if let Some(outcome) = held.shared_outcome() {
            return outcome.map(|()| Some(Freshness::Refreshed));
        }
        let Some(connection) = self.store.connection(link.end_user(), &link.link).await? else {
            return Ok(Some(Freshness::Unchanged));
        };
        if !expires_soon(&connection, self.margin) {
            return Ok(Some(Freshness::Refreshed));
        }
        Ok(None)
    }

    /// After the API refused `used_token` with 401: refresh once, unless the
    /// stored token already differs (a concurrent caller refreshed it).
    pub async fn after_unauthorized(
        &self,
        link: &ConnectionKey,
        used_token: &str,
    ) -> Result<Freshness, FlowError> {
        let mut held = self.hold(link).await?;
        match self
            .unauthorized_under_lock(&mut held, link, used_token)
            .await
        {
            Ok(None) => {
                held.guard.last_unauthorized = Some(std::time::Instant::now());
                self.refresh_holding(held, link).await?;
                Ok(Freshness::Refreshed)
            }
            done => {
                held.release().await;
                done.map(|answer| answer.unwrap_or(Freshness::Refreshed))
            }
        }
    }

    /// Under `link`'s lock after a 401: the answer when no refresh follows,
    /// `None` when one does.
    async fn unauthorized_under_lock(
        &self,
        held: &mut Held,
        link: &ConnectionKey,
        used_token: &str,
    ) -> Result<Option<Freshness>, FlowError> {
        let Some(connection) = self.store.connection(link.end_user(), &link.link).await? else {
            return Ok(Some(Freshness::Unchanged));
        };
        if !self.is_oauth(&connection).await {
            return Ok(Some(Freshness::Unchanged));
        }
        if access_token(&connection).is_some_and(|current| current != used_token) {
            return Ok(Some(Freshness::Refreshed));
        }
        if let Some(outcome) = held.shared_outcome() {
            return outcome.map(|()| Some(Freshness::Refreshed));
        }
        if let Credentials::Oauth2 {
            refresh_token: None,
            expires_at_ms: None,
            ..
        } = &connection.credentials
        {
            // Nothing to refresh: one 401 is the API's word on this call,
            // not proof the grant is gone. The plugin gets the 401.
            super::flow::record_failure(
                &self.store,
                link,
                "the API answered 401 to a token without expiry or refresh token; connect again if it keeps happening",
            ).await?;
            return Ok(Some(Freshness::Unchanged));
        }
        if held
            .guard
            .last_unauthorized
            .is_some_and(|at| at.elapsed() < self.unauthorized_interval)
        {
            // A 401 already caused a refresh just now: do not hammer the
            // provider; the plugin gets the 401.
            return Ok(Some(Freshness::Unchanged));
        }
        Ok(None)
    }

    /// The background pass: refreshes connected OAuth connections whose
    /// token expires within the margin, and idle ones whose tokens are older
    /// than a day.
    pub async fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        let connections = match self.store.sealed_connections().await {
            Ok(list) => list,
            Err(err) => {
                tracing::error!(error = %err, "token sweep cannot read connections");
                return report;
            }
        };
        let now = now_ms();
        for sealed in connections {
            let Credentials::Oauth2 {
                expires_at_ms,
                refresh_token,
                ..
            } = &sealed.credentials
            else {
                continue;
            };
            if sealed.status != junction_store::ConnectionStatus::Connected {
                continue;
            }
            let expiring =
                expires_at_ms.is_some_and(|at| at <= now + self.margin.as_millis() as u64);
            let idle = refresh_token.is_some()
                && sealed
                    .last_refresh_ms
                    .is_none_or(|at| now.saturating_sub(at) >= IDLE_REFRESH.as_millis() as u64);
            if !(expiring || idle) {
                continue;
            }
            let link = ConnectionKey::of(&sealed);
            let held = match self.hold(&link).await {
                Ok(held) => held,
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(link = %link, error = %err, "background refresh cannot take the connection's lock");
                    continue;
                }
            };
            // Re-check under the lock: a plugin (or another host) may have
            // refreshed it.
            let current = self
                .store
                .sealed_connection(link.end_user(), &link.link)
                .await
                .ok()
                .flatten();
            if current.is_some_and(|c| c.last_refresh_ms != sealed.last_refresh_ms) {
                held.release().await;
                continue;
            }
            match self.refresh_holding(held, &link).await {
                Ok(_) => report.refreshed += 1,
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(link = %link, error = %err, "background refresh failed");
                }
            }
        }
        report
    }

    /// Refreshes now, whatever the expiry (`POST /v1/connections/{link}/refresh`).
    pub async fn refresh_now(&self, link: &ConnectionKey) -> Result<Connection, FlowError> {
        let held = self.hold(link).await?;
        if let Some(outcome) = held.shared_outcome() {
            held.release().await;
            outcome?;
            return self
                .store
                .connection(link.end_user(), &link.link)
                .await?
                .ok_or_else(|| FlowError::UnknownConnection(link.to_string()));
        }
        self.refresh_holding(held, link).await
    }

    /// Revokes `link`'s tokens (RFC 7009) under its refresh lock, so a
    /// refresh in flight cannot store new tokens after the revoke.
    pub async fn revoke(&self, link: &ConnectionKey) -> Result<(), FlowError> {
        let held = self.hold(link).await?;
        let revoked = self.oauth.revoke(&self.store, link).await;
        held.release().await;
        revoked
    }

    /// Completes the provider's redirect back under the connection's
    /// refresh lock. An unknown or missing state is answered without a
    /// write.
    pub async fn callback(
        &self,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<(&str, Option<&str>)>,
    ) -> super::flow::Callback {
        let link = match state {
            Some(s) => super::flow::pending_target(&self.store, s)
                .await
                .map(|target| target.key),
            None => None,
        };
        let held = match &link {
            Some(link) => match self.hold(link).await {
                Ok(held) => Some(held),
                Err(err) => {
                    return super::flow::Callback {
                        link: Some(link.clone()),
                        from_console: false,
                        result: Err(err),
                    };
                }
            },
            None => None,
        };
        let done = self.oauth.callback(&self.store, state, code, error).await;
        if let Some(held) = held {
            held.release().await;
        }
        done
    }
}
