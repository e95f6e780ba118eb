//! The `connections` interface, and the lookup `invoke-url` shares with it:
//! a plugin sees only the connections it was granted, and never a secret.

use super::HostState;
use super::bindings::junction::plugin::connections::{self as wit, Host};
use crate::store::{Connection, ConnectionStatus, Service, StoreError};

/// Why a plugin cannot use a connection.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(
        "connection `{link}` is not granted to plugin `{plugin}`; list it under connections in [package.metadata.junction]"
    )]
    NotGranted { link: String, plugin: String },
    #[error("no connection has link name `{0}`; create it with `junction connection add`")]
    Unknown(String),
    #[error("connection `{link}` refers to service `{service}`, which does not exist")]
    MissingService { link: String, service: String },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl HostState {
    /// The connection and its service, if `link` is granted to this plugin.
    pub(crate) fn granted_connection(
        &self,
        link: &str,
    ) -> Result<(Connection, Service), LookupError> {
        if !self
            .grants
            .connections
            .iter()
            .any(|granted| granted == link)
        {
            return Err(LookupError::NotGranted {
                link: link.into(),
                plugin: self.plugin.clone(),
            });
        }
        let store = &self.shared.store;
        let connection = store
            .connection(link)?
            .ok_or_else(|| LookupError::Unknown(link.into()))?;
        let service =
            store
                .service(&connection.service)?
                .ok_or_else(|| LookupError::MissingService {
                    link: link.into(),
                    service: connection.service.clone(),
                })?;
        Ok((connection, service))
    }
}

/// The service's base URL with `{key}` replaced by the connection's metadata.
pub(crate) fn expand_base_url(
    service: &Service,
    connection: &Connection,
) -> Result<Option<String>, String> {
    let Some(template) = &service.base_url else {
        return Ok(None);
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template.as_str();
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
        out.push_str(value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
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

impl Host for HostState {
    async fn get(&mut self, link_name: String) -> wasmtime::Result<Option<wit::Connection>> {
        match self.granted_connection(&link_name) {
            Ok((connection, service)) => Ok(Some(to_wit(connection, &service))),
            Err(LookupError::Store(err)) => Err(wasmtime::Error::msg(format!(
                "connection store unavailable: {err}"
            ))),
            Err(_) => Ok(None),
        }
    }

    async fn all(&mut self) -> wasmtime::Result<Vec<wit::Connection>> {
        let mut out = Vec::new();
        for link in self.grants.connections.clone() {
            match self.granted_connection(&link) {
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
