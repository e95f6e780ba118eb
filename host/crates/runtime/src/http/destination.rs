//! Where a call may go: the network policy (no private or local addresses
//! unless configured) and the allowed origins — with a connection, its base
//! URL's origin and the service's allowed hosts; without one, the plugin's
//! `allowed-hosts`. Checked for the first URL and again for every redirect.

use std::borrow::Cow;

use url::Url;

use crate::bindings::junction::plugin::http::Error;
use junction_core::HostPattern;
use junction_net::NetworkPolicy;

/// The origins one call may reach.
pub(super) struct Destinations<'a> {
    /// The calling plugin, for the message.
    pub(super) plugin: &'a str,
    /// The connection whose credentials go along, if any.
    pub(super) connection: Option<String>,
    /// The origins allowed: the plugin's own, or those of the connection.
    pub(super) allowed: Cow<'a, [HostPattern]>,
    /// Which addresses may be reached.
    pub(super) network: NetworkPolicy,
}

impl Destinations<'_> {
    /// Refuses `url` unless the network policy and the allowed origins both admit it.
    pub(super) fn check(&self, url: &Url) -> Result<(), Error> {
        // IP literals never reach the resolver, which guards names.
        junction_net::check_url(self.network, url).map_err(|e| Error::Forbidden(e.to_string()))?;
        if self.allowed.iter().any(|pattern| pattern.matches(url)) {
            return Ok(());
        }
        let origin = HostPattern::from_url(url)
            .map(|p| p.to_string())
            .unwrap_or_else(|| url.scheme().to_owned());
        let list = if self.allowed.is_empty() {
            "none".to_owned()
        } else {
            self.allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(Error::Forbidden(match &self.connection {
            Some(link) => format!(
                "the credentials of connection `{link}` are only sent to {list}; `{origin}` is not among them (add it to the service's allowed hosts)"
            ),
            None => format!(
                "plugin `{}` may not call `{origin}` (allowed: {list}); add it to allowed-hosts in [package.metadata.junction]",
                self.plugin
            ),
        }))
    }
}
