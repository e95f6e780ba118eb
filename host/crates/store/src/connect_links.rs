//! Connect links: the single-use, short-lived invitations an embedding
//! app hands one of its end users to connect an account on the hosted
//! page, without any admin token. A link is bound to the first browser
//! that opens it (the sha256 of a cookie set then) and used up once its
//! connection is made; the row says which, so any host can serve any step.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// One connect link, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectLink {
    /// Its id (random; the URL carries it sealed with its expiry).
    pub id: String,
    /// The end user the connection will belong to.
    pub end_user: String,
    /// The service to connect.
    pub service: String,
    /// The connection's link name.
    pub link_name: String,
    /// Scopes to ask for (the service's defaults when empty).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The app's name, shown on the page.
    pub app: String,
    /// When it was issued.
    pub created_at_ms: u64,
    /// When it stops working.
    pub expires_at_ms: u64,
    /// The sha256 (hex) of the cookie of the browser that first opened it.
    #[serde(default)]
    pub browser: Option<String>,
    /// When its connection was made; it works no more after.
    #[serde(default)]
    pub used_at_ms: Option<u64>,
}

/// Stored connect links.
#[async_trait]
pub trait ConnectLinkRows: Send + Sync {
    /// Stores a new link, and drops links that expired a day or more ago.
    async fn put_connect_link(&self, link: &ConnectLink) -> Result<(), StoreError>;
    /// The link with this id.
    async fn connect_link(&self, id: &str) -> Result<Option<ConnectLink>, StoreError>;
    /// Binds the link to `browser` unless a browser holds it already;
    /// answers the link as stored afterwards (its `browser` says who holds
    /// it). Of browsers racing to open one link, exactly one binds it.
    async fn bind_connect_link(
        &self,
        id: &str,
        browser: &str,
    ) -> Result<Option<ConnectLink>, StoreError>;
    /// Marks the link used at `at_ms` if it is unused and held by
    /// `browser`; whether this call did (exactly one of any racing calls).
    async fn use_connect_link(
        &self,
        id: &str,
        browser: &str,
        at_ms: u64,
    ) -> Result<bool, StoreError>;
}

/// How long after expiry a link's row is kept (to say "expired" rather
/// than "unknown").
pub const KEEP_EXPIRED_MS: u64 = 24 * 60 * 60 * 1000;

/// `link` bound to `browser`, if it was free: the rule both backends apply.
pub(crate) fn bound(mut link: ConnectLink, browser: &str) -> (ConnectLink, bool) {
    if link.browser.is_some() {
        return (link, false);
    }
    link.browser = Some(browser.to_owned());
    (link, true)
}

/// `link` used by `browser` at `at_ms`, if it may be.
pub(crate) fn used(mut link: ConnectLink, browser: &str, at_ms: u64) -> Option<ConnectLink> {
    if link.used_at_ms.is_some() || link.browser.as_deref() != Some(browser) {
        return None;
    }
    link.used_at_ms = Some(at_ms);
    Some(link)
}
