//! `junction service list|show|remove` against the server. Services are
//! created with `junction connection add --auth ...` or `POST /v1/services`.

use clap::Subcommand;

use super::CliError;
use super::client::{Client, ServerArgs, print_json};
use crate::store::{Placement, Service};

/// Service commands.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
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
            let services: Vec<Service> = client.get(&["v1", "services"]).await?;
            if server.json {
                print_json(&services);
            } else if services.is_empty() {
                println!("no services; `junction connection add --auth ...` creates one");
            } else {
                println!(
                    "{:<20} {:<8} {:<40} CREDENTIALS",
                    "NAME", "AUTH", "BASE URL"
                );
                for s in services {
                    println!(
                        "{:<20} {:<8} {:<40} {}",
                        s.name,
                        s.auth_type.as_str(),
                        s.base_url.as_deref().unwrap_or("-"),
                        placement_text(&s.placement)
                    );
                }
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
