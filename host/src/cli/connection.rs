//! `junction connection add|list|remove`: static-credential connections
//! (api-key, basic, bearer) in the local store. Secrets are read from a file
//! or standard input, never from the command line, where `ps` and shell
//! history would keep them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, DEFAULT_DATA_DIR};
use crate::store::{
    AuthType, Connection, ConnectionStatus, Credentials, Placement, Secret, Service, Store, now_ms,
};

/// Connection commands.
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection; creates its service from the flags if it does not exist yet.
    Add(Box<AddArgs>),
    /// List connections (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The data directory.
        #[arg(long, env = "JUNCTION_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Remove a connection.
    Remove {
        /// The link name.
        link_name: String,
        /// The data directory.
        #[arg(long, env = "JUNCTION_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

/// Arguments of `junction connection add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The link name plugins use (a-z first, then a-z, 0-9, _; at most 50).
    link_name: String,
    /// The service it belongs to.
    #[arg(long)]
    service: String,
    /// For a new service: api-key, basic or bearer.
    #[arg(long = "auth")]
    auth_type: Option<String>,
    /// For a new service: the API base URL; `{key}` takes a --metadata value.
    #[arg(long)]
    base_url: Option<String>,
    /// For a new service: the header that carries the credential.
    #[arg(long)]
    header: Option<String>,
    /// For a new service: the header value, with `{token}` for the credential.
    #[arg(long)]
    template: Option<String>,
    /// For a new service: send the credential as this query parameter instead.
    #[arg(long)]
    query_param: Option<String>,
    /// For a new api-key service: send the key as HTTP Basic password, with this user name.
    #[arg(long)]
    basic_user: Option<String>,
    /// For a new service: another origin credentials may go to (repeatable).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// For basic auth: the user name.
    #[arg(long)]
    username: Option<String>,
    /// Non-secret metadata `key=value` (repeatable), e.g. `dc=us6`.
    #[arg(long = "metadata", value_parser = parse_pair)]
    metadata: Vec<(String, String)>,
    /// Read the secret from this file instead of standard input.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The data directory.
    #[arg(long, env = "JUNCTION_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// What `list` shows of a connection: no secret, only whether there is one.
#[derive(Debug, serde::Serialize)]
pub struct ConnectionView {
    /// Link name.
    pub link_name: String,
    /// Service.
    pub service: String,
    /// Status.
    pub status: ConnectionStatus,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Whether credentials are stored.
    pub has_secret: bool,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        ConnectionView {
            link_name: c.link_name.clone(),
            service: c.service.clone(),
            status: c.status,
            metadata: c.metadata.clone(),
            has_secret: c.credentials.has_secret(),
        }
    }
}

/// Runs a connection command.
pub fn dispatch(command: ConnectionCommand) -> Result<(), CliError> {
    match command {
        ConnectionCommand::Add(args) => {
            let AddArgs {
                link_name,
                service,
                auth_type,
                base_url,
                header,
                template,
                query_param,
                basic_user,
                allowed_hosts,
                username,
                metadata,
                secret_file,
                data_dir,
            } = *args;
            crate::store::validate_link_name(&link_name).map_err(CliError::Usage)?;
            let store = Store::open(&data_dir)?;
            let service = match store.service(&service)? {
                Some(existing) => existing,
                None => {
                    let auth = auth_type.ok_or_else(|| {
                        CliError::Usage(format!(
                            "service `{service}` does not exist; give --auth (api-key, basic or bearer) and --base-url to create it"
                        ))
                    })?;
                    let auth: AuthType = auth.parse().map_err(CliError::Usage)?;
                    if auth == AuthType::Oauth2 {
                        return Err(CliError::Usage(
                            "oauth2 connections are authorised in the browser, not added with a secret".into(),
                        ));
                    }
                    let placement = placement_for(auth, header, template, query_param, basic_user)?;
                    let new = Service {
                        name: service.clone(),
                        auth_type: auth,
                        base_url,
                        allowed_hosts,
                        placement,
                        created_at_ms: now_ms(),
                    };
                    for host in &new.allowed_hosts {
                        crate::runtime::HostPattern::parse(host).map_err(CliError::Usage)?;
                    }
                    store.create_service(&new)?;
                    new
                }
            };
            let secret = read_secret(secret_file.as_deref())?;
            let credentials = match service.auth_type {
                AuthType::ApiKey => Credentials::ApiKey { key: secret },
                AuthType::Bearer => Credentials::Bearer { token: secret },
                AuthType::Basic => Credentials::Basic {
                    username: username.ok_or_else(|| {
                        CliError::Usage("basic connections need --username".into())
                    })?,
                    password: secret,
                },
                AuthType::Oauth2 => {
                    return Err(CliError::Usage(format!(
                        "service `{}` uses oauth2; its connections are authorised in the browser",
                        service.name
                    )));
                }
            };
            let now = now_ms();
            let connection = Connection {
                link_name: link_name.clone(),
                service: service.name.clone(),
                status: ConnectionStatus::Connected,
                scopes: Vec::new(),
                metadata: metadata.into_iter().collect(),
                credentials,
                last_error: None,
                created_at_ms: now,
                updated_at_ms: now,
            };
            store.create_connection(&connection)?;
            println!(
                "connection `{link_name}` added (service `{}`)",
                service.name
            );
            Ok(())
        }
        ConnectionCommand::List { json, data_dir } => {
            let store = Store::open(&data_dir)?;
            let views: Vec<ConnectionView> = store
                .connections()?
                .iter()
                .map(ConnectionView::from)
                .collect();
            if json {
                let text = serde_json::to_string_pretty(&views)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                println!("{text}");
            } else if views.is_empty() {
                println!("no connections; add one with `junction connection add`");
            } else {
                for view in views {
                    let status = serde_json::to_value(view.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    println!("{:<24} {:<20} {status}", view.link_name, view.service);
                }
            }
            Ok(())
        }
        ConnectionCommand::Remove {
            link_name,
            data_dir,
        } => {
            let store = Store::open(&data_dir)?;
            store.delete_connection(&link_name)?;
            println!("connection `{link_name}` removed");
            Ok(())
        }
    }
}

fn placement_for(
    auth: AuthType,
    header: Option<String>,
    template: Option<String>,
    query_param: Option<String>,
    basic_user: Option<String>,
) -> Result<Placement, CliError> {
    let chosen = [
        header.is_some() || template.is_some(),
        query_param.is_some(),
        basic_user.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if chosen > 1 {
        return Err(CliError::Usage(
            "choose one of --header/--template, --query-param or --basic-user".into(),
        ));
    }
    if auth == AuthType::Basic {
        return Ok(Placement::Basic { username: None });
    }
    if let Some(name) = query_param {
        return Ok(Placement::Query { name });
    }
    if let Some(user) = basic_user {
        return Ok(Placement::Basic {
            username: Some(user),
        });
    }
    let template = template.unwrap_or_else(|| "Bearer {token}".to_owned());
    if !template.contains("{token}") {
        return Err(CliError::Usage(format!(
            "--template `{template}` must contain {{token}}"
        )));
    }
    Ok(Placement::Header {
        name: header.unwrap_or_else(|| "Authorization".to_owned()),
        template,
    })
}

fn read_secret(file: Option<&std::path::Path>) -> Result<Secret, CliError> {
    let mut text = String::new();
    match file {
        Some(path) => {
            text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read the secret from {}: {e}",
                    path.display()
                ))
            })?;
        }
        None => {
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                CliError::Usage(format!("cannot read the secret from standard input: {e}"))
            })?;
        }
    }
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(CliError::Usage(
            "the secret is empty; pipe it on standard input or give --secret-file".into(),
        ));
    }
    Ok(Secret::new(secret))
}
