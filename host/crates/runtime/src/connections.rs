//! The `connections` interface, and the lookup `invoke-url` shares with it:
//! a plugin sees only the connections it was granted, and never a secret.
//! Its state is [`ConnectionsState`]: the plugin's grants, the end user the
//! execution runs for, and where connections come from. In an end user's
//! execution a link name means that end user's connection; the
//! organisation's stands in only for links the manifest lists under
//! `org-fallback`.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use crate::Grants;
use crate::bindings::junction::plugin::connections::{self as wit, Host};
use crate::ports::{ConnectionSource, PortError};
use junction_core::{Connection, ConnectionKey, ConnectionStatus, Service};

/// Why a plugin cannot use a connection.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(
        "connection `{link}` is not granted to plugin `{plugin}`; list it under connections in [package.metadata.junction]"
    )]
    NotGranted { link: String, plugin: String },
    #[error("no connection has link name `{0}`; create it with `junction connection add`")]
    Unknown(String),
    #[error(
        "end user `{end_user}` has no connection `{link}`; connect their account first (a connect link: POST /v1/connect-links)"
    )]
    EndUserHasNone { link: String, end_user: String },
    #[error("connection `{link}` refers to service `{service}`, which does not exist")]
    MissingService { link: String, service: String },
    #[error("the store failed: {0}")]
    Store(#[from] PortError),
}

/// One execution's view of connections: which it was granted, and the
/// source that looks them up.
pub(crate) struct ConnectionsState {
    plugin: String,
    granted: Vec<String>,
    requested: Vec<String>,
    org_fallback: Vec<String>,
    end_user: Option<String>,
    source: Arc<dyn ConnectionSource>,
    /// Granted links the end user turned out to have no connection of.
    missing: std::sync::Mutex<Vec<String>>,
}

/// The `connections` interface's data in the linker.
struct Connections;

impl HasData for Connections {
    type Data<'a> = &'a mut ConnectionsState;
}

/// Links the `connections` interface, its state found by `get`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConnectionsState,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Connections>(linker, get)
}

impl ConnectionsState {
    /// The connections `plugin` was granted, for `end_user` (or the
    /// organisation), looked up in `source`.
    pub(crate) fn new(
        plugin: &str,
        grants: Grants,
        end_user: Option<String>,
        source: Arc<dyn ConnectionSource>,
    ) -> Self {
        ConnectionsState {
            plugin: plugin.to_owned(),
            granted: grants.connections,
            requested: grants.requested,
            org_fallback: grants.org_fallback,
            end_user,
            source,
            missing: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The link names looked up for the end user and not found, in order.
    pub(crate) fn missing(&self) -> Vec<String> {
        self.missing.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Which stored connection `link` means in this execution, and that
    /// connection: the end user's own, else (where the manifest allows)
    /// the organisation's. `None` when neither exists.
    async fn find(&self, link: &str) -> Result<Option<(ConnectionKey, Connection)>, PortError> {
        let mut candidates = Vec::with_capacity(2);
        if let Some(user) = &self.end_user
            && self.requested.iter().any(|l| l == link)
        {
            candidates.push(ConnectionKey::new(Some(user), link));
        }
        let org_allowed = self.end_user.is_none() || self.org_fallback.iter().any(|l| l == link);
        if org_allowed && self.granted.iter().any(|l| l == link) {
            candidates.push(ConnectionKey::org(link));
        }
        for key in candidates {
            if let Some(connection) = self.source.connection(&key).await? {
                return Ok(Some((key, connection)));
            }
        }
        Ok(None)
    }

    /// Which stored connection `link` means in this execution, if it is
    /// granted and exists: the key its tokens are refreshed under.
    pub(crate) async fn key_for(&self, link: &str) -> Option<ConnectionKey> {
        if !self.is_granted(link) {
            return None;
        }
        if self.end_user.is_none() {
            return Some(ConnectionKey::org(link));
        }
        self.find(link).await.ok().flatten().map(|(key, _)| key)
    }

    /// Whether `link` may be used in this execution: granted at deploy,
    /// or, for an end user, asked for by the manifest.
    pub(crate) fn is_granted(&self, link: &str) -> bool {
        self.links().iter().any(|granted| granted == link)
    }

    /// The link names this execution may use.
    fn links(&self) -> &[String] {
        match self.end_user {
            Some(_) => &self.requested,
            None => &self.granted,
        }
    }

    /// Where connections come from, for refreshing them.
    pub(crate) fn source(&self) -> &Arc<dyn ConnectionSource> {
        &self.source
    }

    /// The connection and its service, if `link` is granted to this plugin.
    pub(crate) async fn granted_connection(
        &self,
        link: &str,
    ) -> Result<(Connection, Service), LookupError> {
        if !self.is_granted(link) {
            return Err(LookupError::NotGranted {
                link: link.to_owned(),
                plugin: self.plugin.clone(),
            });
        }
        let (_, connection) = self.find(link).await?.ok_or_else(|| match &self.end_user {
            Some(user) => {
                if let Ok(mut missing) = self.missing.lock()
                    && !missing.iter().any(|l| l == link)
                {
                    missing.push(link.to_owned());
                }
                LookupError::EndUserHasNone {
                    link: link.to_owned(),
                    end_user: user.clone(),
                }
            }
            None => LookupError::Unknown(link.to_owned()),
        })?;
        let service = self
            .source
            .service(&connection.service)
            .await?
            .ok_or_else(|| LookupError::MissingService {
                link: link.to_owned(),
                service: connection.service.clone(),
            })?;
        Ok((connection, service))
    }
}

/// The service's base URL with `{key}` replaced by the connection's metadata.
///
/// Metadata comes from a provider's answer, so it is checked before it can
/// move where credentials go: a value standing for the whole origin
/// (`{api_domain}` first in the template) must be `scheme://host[:port]` and
/// nothing else; any other value must be a host name or label (no
/// `/ @ : ? # \`, no whitespace). When the service lists allowed hosts, the
/// expanded origin must match one of them.
pub(crate) fn expand_base_url(
    service: &Service,
    connection: &Connection,
) -> Result<Option<String>, String> {
    let Some(template) = &service.base_url else {
        return Ok(None);
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template.as_str();
    let mut substituted = false;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(format!(
                "base URL `{template}` of service `{}` has an unclosed `{{`",
                service.name
            ));
        };
        let key = &rest[open + 1..open + close];
        let value = connection.metadata.get(key).ok_or_else(|| {
            format!(
                "the base URL of service `{}` needs metadata `{key}`, which connection `{}` does not have",
                service.name, connection.link_name
            )
        })?;
        let whole_origin = out.is_empty();
        check_metadata_value(value, whole_origin).map_err(|why| {
            format!(
                "metadata `{key}` of connection `{}` cannot go into the base URL of service `{}`: {why}; connect it again",
                connection.link_name, service.name
            )
        })?;
        out.push_str(value);
        substituted = true;
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    if substituted && !service.allowed_hosts.is_empty() {
        let url = url::Url::parse(&out).map_err(|e| {
            format!(
                "the base URL of service `{}` expands to an invalid URL: {e}",
                service.name
            )
        })?;
        let allowed = service
            .allowed_hosts
            .iter()
            .filter_map(|h| junction_core::HostPattern::parse(h).ok())
            .any(|pattern| pattern.matches(&url));
        if !allowed {
            let origin = junction_core::HostPattern::from_url(&url)
                .map(|p| p.to_string())
                .unwrap_or_default();
            return Err(format!(
                "the base URL of connection `{}` expands to `{origin}`, which is not among the allowed hosts of service `{}` ({})",
                connection.link_name,
                service.name,
                service.allowed_hosts.join(", ")
            ));
        }
    }
    Ok(Some(out))
}

/// Whether a metadata value may be put into a base URL (see [`expand_base_url`]).
pub(crate) fn check_metadata_value(value: &str, whole_origin: bool) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it holds whitespace".into());
    }
    if whole_origin {
        let (scheme, host) = value
            .split_once("://")
            .ok_or_else(|| "it is not an origin like https://api.example.com".to_owned())?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("its scheme `{scheme}` is not http or https"));
        }
        let host = host.strip_suffix('/').unwrap_or(host);
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                (name, Some(port))
            }
            _ => (host, None),
        };
        if let Some(port) = port
            && port.parse::<u16>().is_err()
        {
            return Err("its port is not a number".into());
        }
        if let Some(literal) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            return literal
                .parse::<std::net::Ipv6Addr>()
                .map(|_| ())
                .map_err(|_| format!("`{name}` is not an IPv6 address"));
        }
        return check_host_chars(name);
    }
    check_host_chars(value)
}

fn check_host_chars(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("the host is empty".into());
    }
    match text
        .chars()
        .find(|c| matches!(c, '/' | '@' | ':' | '?' | '#' | '\\' | '%' | '{' | '}'))
    {
        Some(c) => Err(format!("it holds `{c}`, which a host name cannot")),
        None => Ok(()),
    }
}

fn to_wit(connection: Connection, service: &Service) -> wit::Connection {
    let base_url = expand_base_url(service, &connection).ok().flatten();
    wit::Connection {
        link_name: connection.link_name,
        service: connection.service,
        auth_type: service.auth_type.as_str().to_owned(),
        status: match connection.status {
            ConnectionStatus::Connected => wit::Status::Connected,
            ConnectionStatus::Disconnected => wit::Status::Disconnected,
            ConnectionStatus::NeedsReauth => wit::Status::NeedsReauth,
            ConnectionStatus::Error => wit::Status::Error,
        },
        scopes: connection.scopes,
        base_url,
        metadata: connection.metadata.into_iter().collect(),
    }
}

impl Host for ConnectionsState {
    async fn get(&mut self, link_name: String) -> wasmtime::Result<Option<wit::Connection>> {
        match self.granted_connection(&link_name).await {
            Ok((connection, service)) => Ok(Some(to_wit(connection, &service))),
            Err(LookupError::Store(err)) => Err(wasmtime::Error::msg(format!(
                "connection store unavailable: {err}"
            ))),
            Err(_) => Ok(None),
        }
    }

    async fn all(&mut self) -> wasmtime::Result<Vec<wit::Connection>> {
        let mut out = Vec::new();
        for link in self.links().to_vec() {
            match self.granted_connection(&link).await {
                Ok((connection, service)) => out.push(to_wit(connection, &service)),
                Err(LookupError::Store(err)) => {
                    return Err(wasmtime::Error::msg(format!(
                        "connection store unavailable: {err}"
                    )));
                }
                Err(_) => {}
            }
        }
        Ok(out)
    }
}
