//! Keeping OAuth tokens usable: refresh ahead of expiry when a plugin uses a
//! connection, and once after the API answers 401 — unless the token was
//! already replaced meanwhile. Refresh is single-flight per connection: one
//! async lock per link name, and the stored token is re-read after taking
//! it, so concurrent executions share one refresh (providers that rotate
//! refresh tokens revoke the whole grant when one is used twice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::flow::{FlowError, OAuth};
use crate::store::{AuthType, Connection, Credentials, Store, now_ms};

/// Refresh when the token expires within this margin.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The refresh engine shared by the runtime and the server.
pub struct TokenKeeper {
    store: Arc<Store>,
    oauth: OAuth,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    margin: Duration,
}

/// What the keeper did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Not an OAuth connection, or its token is good for longer than the margin.
    Unchanged,
    /// The token was refreshed (here, or by a concurrent caller).
    Refreshed,
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
        }
    }

    fn lock_for(&self, link: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(link.to_owned()).or_default().clone()
    }

    fn is_oauth(&self, connection: &Connection) -> bool {
        matches!(connection.credentials, Credentials::Oauth2 { .. })
            || self
                .store
                .service(&connection.service)
                .ok()
                .flatten()
                .is_some_and(|s| s.auth_type == AuthType::Oauth2)
    }

    /// Refreshes `link` if its token expires within the margin.
    pub async fn ensure_fresh(&self, link: &str) -> Result<Freshness, FlowError> {
        let Some(connection) = self.store.connection(link)? else {
            return Ok(Freshness::Unchanged);
        };
        if !self.is_oauth(&connection) || !expires_soon(&connection, self.margin) {
            return Ok(Freshness::Unchanged);
        }
        let lock = self.lock_for(link);
        let _held = lock.lock().await;
        // Someone may have refreshed while this caller waited.
        let Some(connection) = self.store.connection(link)? else {
            return Ok(Freshness::Unchanged);
        };
        if !expires_soon(&connection, self.margin) {
            return Ok(Freshness::Refreshed);
        }
        self.oauth.refresh(&self.store, link).await?;
        Ok(Freshness::Refreshed)
    }

    /// After the API refused `used_token` with 401: refresh once, unless the
    /// stored token already differs (a concurrent caller refreshed it).
    pub async fn after_unauthorized(
        &self,
        link: &str,
        used_token: &str,
    ) -> Result<Freshness, FlowError> {
        let lock = self.lock_for(link);
        let _held = lock.lock().await;
        let Some(connection) = self.store.connection(link)? else {
            return Ok(Freshness::Unchanged);
        };
        if !self.is_oauth(&connection) {
            return Ok(Freshness::Unchanged);
        }
        if access_token(&connection).is_some_and(|current| current != used_token) {
            return Ok(Freshness::Refreshed);
        }
        self.oauth.refresh(&self.store, link).await?;
        Ok(Freshness::Refreshed)
    }

    /// Refreshes now, whatever the expiry (`POST /v1/connections/{link}/refresh`).
    pub async fn refresh_now(&self, link: &str) -> Result<Connection, FlowError> {
        let lock = self.lock_for(link);
        let _held = lock.lock().await;
        self.oauth.refresh(&self.store, link).await
    }
}
