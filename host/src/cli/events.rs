//! Client commands for events: `event send`, `event show`, `events tail`
//! (follows `GET /v1/executions/stream`), `deliveries` (with `--retry`),
//! `triggers`, `trigger add|remove` and `hook secret`.

use std::io::{Read, Write};

use clap::Subcommand;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::CliError;
use super::client::{Client, ServerArgs, print_json};

/// `junction event ...`
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Send an event to the server; it runs every plugin whose trigger matches.
    Send {
        /// The kind, e.g. `campaign.sync`.
        kind: String,
        /// The payload: a JSON file, or `-` for standard input; `{}` when absent.
        #[arg(long)]
        payload: Option<String>,
        /// Sending the same key again within 24 h returns the first event.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show an event and each of its deliveries.
    Show {
        /// The event's id.
        id: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `junction events ...`
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow executions live as they are recorded (Ctrl-C stops).
    Tail {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// `ok` or `failed`.
        #[arg(long)]
        status: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `junction trigger ...`
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Add a trigger to a deployed plugin, e.g. `'{"event": "lead.*"}'`.
    Add {
        /// The plugin.
        plugin: String,
        /// The trigger as JSON, as in a manifest.
        trigger: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a trigger added with `trigger add`.
    Remove {
        /// Its id.
        id: String,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `junction hook ...`
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Set a new secret for a plugin's webhook and print it once, with the
    /// URL to give the sender. The secret is made here and sent write-only.
    Secret {
        /// The plugin.
        plugin: String,
        /// Its webhook trigger's name.
        hook: String,
        /// Read the secret from standard input instead of making one.
        #[arg(long)]
        secret_stdin: bool,
        /// How to reach the server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// A new webhook secret: `whs_` and 192 random bits in hex.
pub fn random_hook_secret() -> String {
    format!("whs_{}", hex::encode(rand::random::<[u8; 24]>()))
}

fn read_payload(source: Option<&str>) -> Result<Value, CliError> {
    let Some(source) = source else {
        return Ok(json!({}));
    };
    let mut text = String::new();
    if source == "-" {
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            CliError::Usage(format!("cannot read the payload from standard input: {e}"))
        })?;
    } else {
        text = std::fs::read_to_string(source)
            .map_err(|e| CliError::Usage(format!("cannot read the payload from {source}: {e}")))?;
    }
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the payload in {source} is not JSON: {e}")))
}

/// Runs `junction event ...`.
pub async fn event(command: EventCommand) -> Result<(), CliError> {
    match command {
        EventCommand::Send {
            kind,
            payload,
            idempotency_key,
            server,
        } => {
            let payload = read_payload(payload.as_deref())?;
            let client = Client::new(&server)?;
            let body =
                json!({ "kind": kind, "payload": payload, "idempotency_key": idempotency_key });
            let accepted: Value = client
                .send_json(Method::POST, &["v1", "events"], &body)
                .await?;
            if server.json {
                print_json(&accepted);
            } else {
                let id = accepted["id"].as_str().unwrap_or("");
                let matched = accepted["matched"].as_u64().unwrap_or(0);
                if accepted["duplicate"].as_bool() == Some(true) {
                    println!(
                        "already accepted as event {id} (same idempotency key); nothing new queued"
                    );
                } else if matched == 0 {
                    println!("accepted event {id}; no trigger matches `{kind}`, so nothing runs");
                } else {
                    println!("accepted event {id}; delivered to {matched} plugin(s)");
                    println!("follow it with `junction event show {id}` or `junction events tail`");
                }
            }
            Ok(())
        }
        EventCommand::Show { id, server } => {
            let client = Client::new(&server)?;
            let event: Value = client.get(&["v1", "events", &id]).await?;
            if server.json {
                print_json(&event);
                return Ok(());
            }
            println!(
                "event {}  kind {}  source {}",
                event["id"].as_str().unwrap_or(""),
                event["kind"].as_str().unwrap_or(""),
                event["source"].as_str().unwrap_or("")
            );
            print_deliveries(
                event["deliveries"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
            Ok(())
        }
    }
}

fn print_deliveries(deliveries: &[Value]) {
    if deliveries.is_empty() {
        println!("no deliveries");
        return;
    }
    println!(
        "{:<32}  {:<20}  {:<10}  {:>8}  last error",
        "delivery", "plugin", "state", "attempts"
    );
    for d in deliveries {
        println!(
            "{:<32}  {:<20}  {:<10}  {:>8}  {}",
            d["id"].as_str().unwrap_or(""),
            d["plugin"].as_str().unwrap_or(""),
            d["state"].as_str().unwrap_or(""),
            d["attempts"].as_u64().unwrap_or(0),
            d["last_error"].as_str().unwrap_or("")
        );
    }
}

/// Runs `junction events tail`.
pub async fn events(command: EventsCommand) -> Result<(), CliError> {
    let EventsCommand::Tail {
        plugin,
        status,
        server,
    } = command;
    let client = Client::new(&server)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(p) = plugin {
        query.push(("plugin", p));
    }
    if let Some(s) = status {
        query.push(("status", s));
    }
    let request = client
        .request(Method::GET, &["v1", "executions", "stream"])?
        .query(&query)
        .header("accept", "text/event-stream");
    let response = client.send_raw(request).await?;
    if !server.json {
        eprintln!("following executions (Ctrl-C stops)");
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut data = String::new();
    let mut kind = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Usage(format!("the stream broke: {e}")))?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line = buffer[..end].trim_end_matches('\r').to_owned();
            buffer.drain(..=end);
            if let Some(rest) = line.strip_prefix("data:") {
                data.push_str(rest.trim_start());
            } else if let Some(rest) = line.strip_prefix("event:") {
                kind = rest.trim().to_owned();
            } else if line.is_empty() && !data.is_empty() {
                show_streamed(&kind, &data, server.json);
                data.clear();
                kind.clear();
            }
        }
    }
    if !server.json {
        eprintln!("the server closed the stream");
    }
    Ok(())
}

fn show_streamed(kind: &str, data: &str, as_json: bool) {
    if kind == "lagged" {
        eprintln!("(fell behind; some executions were skipped: {data})");
        return;
    }
    if as_json {
        println!("{data}");
    } else if let Ok(e) = serde_json::from_str::<Value>(data) {
        let failure = e["message"]
            .as_str()
            .map(|m| format!("  {m}"))
            .unwrap_or_default();
        let attempt = e["attempt"]
            .as_u64()
            .map(|a| format!(" #{a}"))
            .unwrap_or_default();
        println!(
            "{}  {:<20} {:<24} {:<6} {:>8.1} ms{failure}  ({}{attempt})",
            format_ms(e["started_at_ms"].as_u64().unwrap_or(0)),
            e["plugin"].as_str().unwrap_or(""),
            e["event_kind"].as_str().unwrap_or(""),
            e["status"].as_str().unwrap_or(""),
            e["wall_time_ms"].as_f64().unwrap_or(0.0),
            e["id"].as_str().unwrap_or(""),
        );
    }
    let _ = std::io::stdout().flush();
}

fn format_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Runs `junction deliveries`.
pub async fn deliveries(
    state: Option<String>,
    plugin: Option<String>,
    limit: usize,
    retry: Option<String>,
    server: &ServerArgs,
) -> Result<(), CliError> {
    let client = Client::new(server)?;
    if let Some(id) = retry {
        let delivery: Value = client
            .send(client.request(Method::POST, &["v1", "deliveries", &id, "retry"])?)
            .await?;
        if server.json {
            print_json(&delivery);
        } else {
            println!("delivery {id} queued again for one more attempt");
        }
        return Ok(());
    }
    let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
    if let Some(s) = state {
        query.push(("state", s));
    }
    if let Some(p) = plugin {
        query.push(("plugin", p));
    }
    let list: Vec<Value> = client
        .send(
            client
                .request(Method::GET, &["v1", "deliveries"])?
                .query(&query),
        )
        .await?;
    if server.json {
        print_json(&list);
    } else {
        print_deliveries(&list);
    }
    Ok(())
}

/// Runs `junction triggers`.
pub async fn triggers(plugin: Option<String>, server: &ServerArgs) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let mut request = client.request(Method::GET, &["v1", "triggers"])?;
    if let Some(p) = plugin {
        request = request.query(&[("plugin", p)]);
    }
    let list: Vec<Value> = client.send(request).await?;
    if server.json {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        println!("no triggers; add them to a plugin's manifest or with `junction trigger add`");
        return Ok(());
    }
    println!(
        "{:<24}  {:<20}  {:<8}  {:<10}  trigger",
        "id", "plugin", "source", "kind"
    );
    for t in &list {
        let extra = t["webhook_path"]
            .as_str()
            .map(|p| format!("  POST {p}"))
            .unwrap_or_default();
        println!(
            "{:<24}  {:<20}  {:<8}  {:<10}  {}{extra}",
            t["id"].as_str().unwrap_or(""),
            t["plugin"].as_str().unwrap_or(""),
            t["source"].as_str().unwrap_or(""),
            t["kind"].as_str().unwrap_or(""),
            t["trigger"]
        );
    }
    Ok(())
}

/// Runs `junction trigger ...`.
pub async fn trigger(command: TriggerCommand) -> Result<(), CliError> {
    match command {
        TriggerCommand::Add {
            plugin,
            trigger,
            server,
        } => {
            let trigger: Value = serde_json::from_str(&trigger).map_err(|e| {
                CliError::Usage(format!(
                    "the trigger is not JSON ({e}); e.g. '{{\"event\": \"lead.*\"}}'"
                ))
            })?;
            let client = Client::new(&server)?;
            let created: Value = client
                .send_json(
                    Method::POST,
                    &["v1", "triggers"],
                    &json!({ "plugin": plugin, "trigger": trigger }),
                )
                .await?;
            if server.json {
                print_json(&created);
            } else {
                println!(
                    "trigger {} added to {plugin}",
                    created["id"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        TriggerCommand::Remove { id, server } => {
            Client::new(&server)?
                .delete(&["v1", "triggers", &id])
                .await?;
            println!("trigger {id} removed");
            Ok(())
        }
    }
}

/// Runs `junction hook secret`.
pub async fn hook(command: HookCommand) -> Result<(), CliError> {
    let HookCommand::Secret {
        plugin,
        hook,
        secret_stdin,
        server,
    } = command;
    let secret = if secret_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("cannot read the secret: {e}")))?;
        text.trim().to_owned()
    } else {
        random_hook_secret()
    };
    let client = Client::new(&server)?;
    let info: Value = client
        .send_json(
            Method::PUT,
            &["v1", "hooks", &plugin, &hook, "secret"],
            &json!({ "secret": secret }),
        )
        .await?;
    let base = server.url.trim_end_matches('/');
    if server.json {
        print_json(&json!({
            "secret": secret,
            "url": format!("{base}{}", info["url_path"].as_str().unwrap_or("")),
            "url_with_secret": format!("{base}/hooks/{plugin}/{hook}/{secret}"),
        }));
        return Ok(());
    }
    println!("webhook {hook} of {plugin} has a new secret (shown only now):");
    println!("  {secret}");
    println!(
        "senders that sign: POST {base}{}",
        info["url_path"].as_str().unwrap_or("")
    );
    println!("  {}", info["signing"].as_str().unwrap_or(""));
    println!("senders that cannot sign: POST {base}/hooks/{plugin}/{hook}/{secret}");
    Ok(())
}
