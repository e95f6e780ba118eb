//! `junction service add|list|show|remove` against the server. Services are
//! created with `junction connection add --auth ...` or `POST /v1/services`.

use clap::Subcommand;

use super::CliError;
use super::client::{Client, ServerArgs, print_json};
use junction_server::services::ServiceListing;
use junction_store::{Placement, Service};

/// Service commands.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add a service: a catalog entry (`--catalog google --client-id ...`) or
    /// a full definition from a JSON file (`--from-file service.json`, the
    /// body of `POST /v1/services`). A client secret is read from
    /// `--client-secret-file` or, with `--client-secret-stdin`, standard input.
    Add {
        /// The service's name (default: the catalog id).
        name: Option<String>,
        /// The catalog entry to configure.
        #[arg(long, conflicts_with = "from_file")]
        catalog: Option<String>,
        /// The OAuth client id of your app at the provider.
        #[arg(long)]
        client_id: Option<String>,
        /// A JSON file with the whole definition.
        #[arg(long)]
        from_file: Option<std::path::PathBuf>,
        /// Read the OAuth client secret from this file.
        #[arg(long, conflicts_with = "client_secret_stdin")]
        client_secret_file: Option<std::path::PathBuf>,
        /// Read the OAuth client secret from standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List services.
    List {
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one service.
    Show {
        /// The service's name.
        name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a service no connection uses.
    Remove {
        /// The service's name.
        name: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn placement_text(placement: &Placement) -> String {
    match placement {
        Placement::Header { name, template } => format!("header {name}: {template}"),
        Placement::Query { name } => format!("query parameter {name}"),
        Placement::Basic { username } => match username {
            Some(user) => format!("HTTP Basic as {user}"),
            None => "HTTP Basic".to_owned(),
        },
    }
}

/// Runs a service command.
pub async fn dispatch(command: ServiceCommand) -> Result<(), CliError> {
    match command {
        ServiceCommand::List { server } => {
            let client = Client::new(&server)?;
            let services: Vec<ServiceListing> = client.get(&["v1", "services"]).await?;
            if server.json {
                print_json(&services);
            } else {
                println!(
                    "{:<20} {:<8} {:<11} {:<40} CREDENTIALS",
                    "NAME", "AUTH", "STATE", "BASE URL"
                );
                for listed in &services {
                    let s = &listed.service;
                    let state = if listed.configured {
                        "configured"
                    } else {
                        "catalog"
                    };
                    println!(
                        "{:<20} {:<8} {:<11} {:<40} {}",
                        s.name,
                        s.auth_type.as_str(),
                        state,
                        s.base_url.as_deref().unwrap_or("-"),
                        placement_text(&s.placement)
                    );
                }
                println!(
                    "\nconfigure a catalog entry with `junction service add --catalog <name> --client-id <id> --client-secret-stdin`"
                );
            }
            Ok(())
        }
        ServiceCommand::Add {
            name,
            catalog,
            client_id,
            from_file,
            client_secret_file,
            client_secret_stdin,
            server,
        } => {
            let mut body = match (&from_file, &catalog) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        CliError::Usage(format!("cannot read {}: {e}", path.display()))
                    })?;
                    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                        CliError::Usage(format!("{} is not JSON: {e}", path.display()))
                    })?
                }
                (None, Some(id)) => serde_json::json!({ "catalog": id }),
                (None, None) => {
                    return Err(CliError::Usage(
                        "give --catalog <id> (see `junction service list`) or --from-file <json>"
                            .into(),
                    ));
                }
            };
            if let Some(name) = name {
                body["name"] = serde_json::json!(name);
            }
            if let Some(client_id) = client_id {
                body["client_id"] = serde_json::json!(client_id);
            }
            let secret = match (client_secret_file, client_secret_stdin) {
                (Some(path), _) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    CliError::Usage(format!("cannot read {}: {e}", path.display()))
                })?),
                (None, true) => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?;
                    Some(text)
                }
                (None, false) => None,
            };
            if let Some(secret) = secret {
                body["client_secret"] = serde_json::json!(secret.trim_end_matches(['\r', '\n']));
            }
            let client = Client::new(&server)?;
            let service: Service = client
                .send_json(reqwest::Method::POST, &["v1", "services"], &body)
                .await?;
            if server.json {
                print_json(&service);
            } else {
                println!(
                    "service `{}` added ({}{})",
                    service.name,
                    service.auth_type.as_str(),
                    if service.has_client_secret {
                        ", client secret stored encrypted"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        ServiceCommand::Show { name, server } => {
            let client = Client::new(&server)?;
            let service: Service = client.get(&["v1", "services", &name]).await?;
            if server.json {
                print_json(&service);
            } else {
                println!("name:          {}", service.name);
                println!("auth:          {}", service.auth_type.as_str());
                println!(
                    "base url:      {}",
                    service.base_url.as_deref().unwrap_or("-")
                );
                println!("credentials:   {}", placement_text(&service.placement));
                if !service.allowed_hosts.is_empty() {
                    println!("allowed hosts: {}", service.allowed_hosts.join(", "));
                }
            }
            Ok(())
        }
        ServiceCommand::Remove { name, server } => {
            let client = Client::new(&server)?;
            client.delete(&["v1", "services", &name]).await?;
            println!("service `{name}` removed");
            Ok(())
        }
    }
}
