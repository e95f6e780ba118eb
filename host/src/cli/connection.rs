//! `junction connection ...` against the server: `add` for static
//! credentials (api-key, basic, bearer); `create`, `connect`, `refresh` and
//! `revoke` for oauth2 connections; `list`, `show`, `remove` for both. Secrets are read from a
//! file or standard input, never from the command line, where `ps` and shell
//! history would keep them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;

use super::CliError;
use super::client::{Client, ClientError, ServerArgs, kebab, print_json};
use junction_server::connections::ConnectionView;
use junction_store::{AuthType, Placement, Service};

/// Connection commands.
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection; creates its service from the flags if it does not exist yet.
    Add(Box<AddArgs>),
    /// List connections (never their secrets).
    List {
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create an oauth2 connection, disconnected until `connect`.
    Create {
        /// The link name plugins use (a-z first, then a-z, 0-9, _; at most 50).
        link_name: String,
        /// The oauth2 service it belongs to.
        #[arg(long)]
        service: String,
        /// Scopes to ask for instead of the service's defaults (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Non-secret metadata `key=value` (repeatable).
        #[arg(long = "metadata", value_parser = parse_pair)]
        metadata: Vec<(String, String)>,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Authorise an oauth2 connection: prints the provider URL to open in a
    /// browser and waits until the callback lands (client credentials connect at once).
    Connect {
        /// The link name.
        link_name: String,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        wait: u64,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Refresh an oauth2 connection's token now.
    Refresh {
        /// The link name.
        link_name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke an oauth2 connection's tokens at the provider and forget them.
    Revoke {
        /// The link name.
        link_name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one connection: status, scopes, expiry, history (never its secret).
    #[command(alias = "status")]
    Show {
        /// The link name.
        link_name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a connection and its stored credentials.
    Remove {
        /// The link name.
        link_name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
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
    /// How to reach the server.
    #[command(flatten)]
    server: ServerArgs,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// Runs a connection command.
pub async fn dispatch(command: ConnectionCommand) -> Result<(), CliError> {
    match command {
        ConnectionCommand::Add(args) => add(*args).await,
        ConnectionCommand::List { server } => {
            let client = Client::new(&server)?;
            let views: Vec<ConnectionView> = client.get(&["v1", "connections"]).await?;
            if server.json {
                print_json(&views);
            } else if views.is_empty() {
                println!("no connections; add one with `junction connection add`");
            } else {
                println!(
                    "{:<24} {:<20} {:<14} USED BY",
                    "LINK NAME", "SERVICE", "STATUS"
                );
                for view in views {
                    println!(
                        "{:<24} {:<20} {:<14} {}",
                        view.link_name,
                        view.service,
                        kebab(&view.status),
                        view.used_by.join(", ")
                    );
                }
            }
            Ok(())
        }
        ConnectionCommand::Show { link_name, server } => {
            let client = Client::new(&server)?;
            let view: ConnectionView = client.get(&["v1", "connections", &link_name]).await?;
            if server.json {
                print_json(&view);
            } else {
                println!("link name:  {}", view.link_name);
                println!("service:    {}", view.service);
                println!("status:     {}", kebab(&view.status));
                println!("has secret: {}", view.has_secret);
                for (key, value) in &view.metadata {
                    println!("metadata:   {key}={value}");
                }
                if let Some(error) = &view.last_error {
                    println!("last error: {error}");
                }
                if let Some(at) = view.expires_at_ms {
                    println!("expires at: {at} (ms since the epoch)");
                }
                for change in &view.history {
                    println!(
                        "history:    {} {} {}",
                        change.at_ms,
                        kebab(&change.status),
                        change.reason
                    );
                }
                println!(
                    "use it:     Request::get(\"/...\").connection(\"{}\").send()?",
                    view.link_name
                );
            }
            Ok(())
        }
        ConnectionCommand::Create {
            link_name,
            service,
            scopes,
            metadata,
            server,
        } => {
            junction_store::validate_link_name(&link_name).map_err(CliError::Usage)?;
            let client = Client::new(&server)?;
            let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
            let body = serde_json::json!({
                "link_name": link_name, "service": service, "scopes": scopes, "metadata": metadata,
            });
            let view: ConnectionView = client
                .send_json(Method::POST, &["v1", "connections"], &body)
                .await?;
            if server.json {
                print_json(&view);
            } else {
                println!(
                    "connection `{}` created ({}); authorise it with `junction connection connect {}`",
                    view.link_name,
                    kebab(&view.status),
                    view.link_name
                );
            }
            Ok(())
        }
        ConnectionCommand::Connect {
            link_name,
            wait,
            server,
        } => connect(&link_name, wait, &server).await,
        ConnectionCommand::Refresh { link_name, server } => {
            let view = post_action(&link_name, "refresh", &server).await?;
            println!(
                "connection `{link_name}` refreshed ({})",
                kebab(&view.status)
            );
            Ok(())
        }
        ConnectionCommand::Revoke { link_name, server } => {
            let view = post_action(&link_name, "revoke", &server).await?;
            println!(
                "connection `{link_name}` revoked and {}{}",
                kebab(&view.status),
                view.last_error
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        ConnectionCommand::Remove { link_name, server } => {
            let client = Client::new(&server)?;
            client.delete(&["v1", "connections", &link_name]).await?;
            println!("connection `{link_name}` removed");
            Ok(())
        }
    }
}

async fn add(args: AddArgs) -> Result<(), CliError> {
    junction_store::validate_link_name(&args.link_name).map_err(CliError::Usage)?;
    let client = Client::new(&args.server)?;
    let service: Service = match client.get(&["v1", "services", &args.service]).await {
        Ok(service) => service,
        Err(ClientError::Api { status: 404, .. }) => {
            let auth = args.auth_type.as_deref().ok_or_else(|| {
                CliError::Usage(format!(
                    "service `{}` does not exist; give --auth (api-key, basic or bearer) and --base-url to create it",
                    args.service
                ))
            })?;
            let auth: AuthType = auth.parse().map_err(CliError::Usage)?;
            if auth == AuthType::Oauth2 {
                return Err(CliError::Usage(
                    "oauth2 connections are authorised in the browser, not added with a secret"
                        .into(),
                ));
            }
            let placement = placement_for(
                auth,
                args.header.clone(),
                args.template.clone(),
                args.query_param.clone(),
                args.basic_user.clone(),
            )?;
            let body = serde_json::json!({
                "name": args.service,
                "auth_type": auth,
                "base_url": args.base_url,
                "allowed_hosts": args.allowed_hosts,
                "placement": placement,
            });
            client
                .send_json(Method::POST, &["v1", "services"], &body)
                .await?
        }
        Err(other) => return Err(other.into()),
    };
    let secret = read_secret(args.secret_file.as_deref())?;
    let credentials = match service.auth_type {
        AuthType::ApiKey => serde_json::json!({"type": "api-key", "key": secret}),
        AuthType::Bearer => serde_json::json!({"type": "bearer", "token": secret}),
        AuthType::Basic => serde_json::json!({
            "type": "basic",
            "username": args.username.ok_or_else(|| CliError::Usage("basic connections need --username".into()))?,
            "password": secret,
        }),
        AuthType::Oauth2 => {
            return Err(CliError::Usage(format!(
                "service `{}` uses oauth2; its connections are authorised in the browser",
                service.name
            )));
        }
    };
    let metadata: BTreeMap<String, String> = args.metadata.into_iter().collect();
    let body = serde_json::json!({
        "link_name": args.link_name,
        "service": service.name,
        "credentials": credentials,
        "metadata": metadata,
    });
    let view: ConnectionView = client
        .send_json(Method::POST, &["v1", "connections"], &body)
        .await?;
    if args.server.json {
        print_json(&view);
    } else {
        println!(
            "connection `{}` added (service `{}`)",
            view.link_name, view.service
        );
    }
    Ok(())
}

/// `POST /v1/connections/{link}/{action}` and the connection after it.
async fn post_action(
    link: &str,
    action: &str,
    server: &ServerArgs,
) -> Result<ConnectionView, CliError> {
    let client = Client::new(server)?;
    Ok(client
        .send_json(
            Method::POST,
            &["v1", "connections", link, action],
            &serde_json::json!({}),
        )
        .await?)
}

/// Starts the OAuth flow and waits until the connection is connected.
async fn connect(link: &str, wait: u64, server: &ServerArgs) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let before: ConnectionView = client.get(&["v1", "connections", link]).await?;
    let started: junction_server::oauth::AuthorizeResponse = client
        .send_json(
            Method::POST,
            &["v1", "connections", link, "authorize"],
            &serde_json::json!({}),
        )
        .await?;
    if started.connected {
        println!("connection `{link}` is connected");
        return Ok(());
    }
    let url = started
        .authorize_url
        .ok_or_else(|| CliError::Usage("the server returned no authorize URL".into()))?;
    println!("Open this URL in a browser and approve access:\n\n  {url}\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let view: ConnectionView = client.get(&["v1", "connections", link]).await?;
        if view.updated_at_ms == before.updated_at_ms {
            // Nothing has happened yet: the browser is still on its way.
        } else if view.status == junction_store::ConnectionStatus::Connected && view.has_secret {
            println!("connection `{link}` is connected");
            return Ok(());
        } else if let Some(error) = view.last_error {
            return Err(CliError::Usage(format!(
                "connection `{link}` was not connected: {error}"
            )));
        }
        if std::time::Instant::now() >= deadline {
            return Err(CliError::Usage(format!(
                "gave up after {wait} s; the link stays valid for 10 minutes from when it was made"
            )));
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

/// The secret from `file` or standard input, without a trailing newline.
/// It stays a plain string only as long as it takes to send it.
fn read_secret(file: Option<&std::path::Path>) -> Result<String, CliError> {
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
    Ok(secret)
}
