//! The CLI's plugin commands against a running server: `deploy` (build, then
//! upload with a progress bar for the upload and the server-side compile),
//! `invoke`, `plugins`, `executions`, `logs`, `rollback` and `undeploy`.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use reqwest::multipart::{Form, Part};

use super::client::{Client, ServerArgs, kebab, print_json};
use super::{CliError, build, event};
use junction_core::manifest::Manifest;
use junction_runtime::{ExecutionRecord, Outcome};
use junction_server::executions::ExecutionSummary;
use junction_server::plugins::{PluginDetail, PluginSummary, UploadResponse};

/// Upload chunk size: small enough for a smooth bar.
const CHUNK: usize = 64 * 1024;

/// Arguments of `junction deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// A plugin project's folder (built first: Rust, Python or JavaScript) or a component `.wasm` file.
    pub plugin: PathBuf,
    /// Deploy under this name instead of the crate's.
    #[arg(long)]
    pub name: Option<String>,
    /// Grant only these connections (repeatable); by default every requested
    /// connection that exists is granted.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// The plugin's project file with its manifest (`Cargo.toml`, `pyproject.toml` or `package.json`), for a `.wasm` file.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Cargo's target directory, when building.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    /// How to reach the server.
    #[command(flatten)]
    pub server: ServerArgs,
}

fn hidden_unless(visible: bool) -> ProgressDrawTarget {
    if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// `junction deploy`.
pub async fn deploy(args: DeployArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let built = if args.plugin.is_dir() {
        build::build_plugin(&args.plugin, args.target_dir.as_deref())?
    } else {
        let mut built = build::check_file(&args.plugin)?;
        if let Some(path) = &args.manifest {
            built.manifest = Manifest::from_file(path)?;
        }
        built
    };
    let name = args.name.clone().unwrap_or_else(|| built.name.clone());
    let bytes = std::fs::read(&built.path).map_err(|source| build::BuildError::Read {
        path: built.path.display().to_string(),
        source,
    })?;
    let manifest_json =
        serde_json::to_string(&built.manifest).map_err(|e| CliError::Usage(e.to_string()))?;

    let total = bytes.len() as u64;
    let bar = ProgressBar::with_draw_target(Some(total), hidden_unless(!args.server.json));
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("uploading");
    let chunks: Vec<bytes::Bytes> = bytes
        .chunks(CHUNK)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let count = chunks.len();
    let progress = bar.clone();
    let stream = futures::stream::iter(chunks.into_iter().enumerate()).map(move |(i, chunk)| {
        progress.inc(chunk.len() as u64);
        if i + 1 == count {
            // The last byte is on its way; what follows is the server compiling.
            progress.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            progress.set_message("compiling on the server");
            progress.enable_steady_tick(Duration::from_millis(100));
        }
        Ok::<_, std::io::Error>(chunk)
    });
    let component = Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
        .file_name(format!("{name}.wasm"))
        .mime_str("application/wasm")
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let mut form = Form::new()
        .part("component", component)
        .text("manifest", manifest_json);
    if !args.grants.is_empty() {
        let grants =
            serde_json::to_string(&args.grants).map_err(|e| CliError::Usage(e.to_string()))?;
        form = form.text("grants", grants);
    }
    let request = client
        .request(Method::PUT, &["v1", "plugins", &name])?
        .multipart(form);
    let result: Result<UploadResponse, _> = client.send(request).await;
    bar.finish_and_clear();
    let deployed = result?;
    if args.server.json {
        print_json(&deployed);
        return Ok(());
    }
    println!(
        "deployed {} version {} ({} bytes, sha256 {}, compiled in {:.0} ms)",
        deployed.name, deployed.version, deployed.size, deployed.sha256, deployed.compile_ms
    );
    if deployed.granted_connections.is_empty() {
        println!("granted connections: none");
    } else {
        println!(
            "granted connections: {}",
            deployed.granted_connections.join(", ")
        );
    }
    if !deployed.missing_connections.is_empty() {
        println!(
            "missing connections: {} (create them with `junction connection add`, then deploy again)",
            deployed.missing_connections.join(", ")
        );
    }
    for trigger in &built.manifest.triggers {
        if let Some(event) = trigger["event"].as_str() {
            println!("runs on `{event}` events (`junction event send {event}`)");
        } else if let Some(schedule) = trigger["schedule"].as_str() {
            println!("runs on schedule `{schedule}`");
        } else if let Some(hook) = trigger["webhook"].as_str() {
            println!(
                "webhook `{hook}`: POST /hooks/{name}/{hook}; give it a secret with `junction hook secret {name} {hook}`"
            );
        } else if let Some(state) = trigger["connection"].as_str() {
            println!("runs when a connection becomes `{state}`");
        }
    }
    Ok(())
}

/// `junction invoke`.
pub async fn invoke(
    plugin: &str,
    event_source: Option<&str>,
    server: &ServerArgs,
) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let body = match event_source {
        Some(source) => {
            let event = event::read_event(source)?;
            let payload: serde_json::Value =
                serde_json::from_str(&event.payload).unwrap_or_default();
            serde_json::json!({"kind": event.kind, "payload": payload, "id": event.id})
        }
        None => serde_json::json!({"kind": "invoke", "payload": {}}),
    };
    let record: ExecutionRecord = client
        .send_json(Method::POST, &["v1", "plugins", plugin, "invoke"], &body)
        .await?;
    if server.json {
        print_json(&record);
    } else {
        print_record(&record);
    }
    if record.is_ok() {
        Ok(())
    } else {
        Err(CliError::ExecutionFailed)
    }
}

fn print_record(record: &ExecutionRecord) {
    match &record.outcome {
        Outcome::Ok { output } => {
            println!(
                "ok in {:.1} ms (execution {})",
                record.wall_time_ms, record.id
            );
            let text = serde_json::to_string_pretty(output).unwrap_or_default();
            println!("{text}");
        }
        Outcome::Failed { failure, message } => {
            let class = kebab(failure);
            println!(
                "failed ({class}) in {:.1} ms (execution {})",
                record.wall_time_ms, record.id
            );
            println!("{message}");
        }
    }
    if !record.logs.is_empty() {
        println!("logs:");
        for line in &record.logs {
            println!(
                "  {:>8.1} ms {:<6} {}",
                line.at_ms, line.level, line.message
            );
        }
        if record.logs_truncated {
            println!("  (later lines dropped: the log budget was used up)");
        }
    }
    if !record.calls.is_empty() {
        println!("calls:");
        for call in &record.calls {
            let status = call
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            let via = call
                .connection
                .as_deref()
                .map(|c| format!(" via {c}"))
                .unwrap_or_default();
            let error = call
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            println!(
                "  {} {} -> {status} in {:.1} ms{via}{error}",
                call.method, call.url, call.duration_ms
            );
        }
    }
}

/// `junction plugins`.
pub async fn plugins(server: &ServerArgs) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let list: Vec<PluginSummary> = client.get(&["v1", "plugins"]).await?;
    if server.json {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        println!("no plugins; deploy one with `junction deploy plugins/hello`");
        return Ok(());
    }
    println!(
        "{:<24} {:>7} {:>10}  {:<12}  CONNECTIONS",
        "NAME", "VERSION", "SIZE", "SHA256"
    );
    for plugin in list {
        let mut connections = plugin.granted_connections.join(",");
        if !plugin.missing_connections.is_empty() {
            connections.push_str(&format!(
                " (missing: {})",
                plugin.missing_connections.join(",")
            ));
        }
        if let Some(error) = &plugin.load_error {
            connections.push_str(&format!(" [cannot run: {error}]"));
        }
        println!(
            "{:<24} {:>7} {:>10}  {:<12}  {}",
            plugin.name,
            plugin.active_version,
            plugin.size,
            &plugin.sha256[..plugin.sha256.len().min(12)],
            connections
        );
    }
    Ok(())
}

/// `junction executions`.
pub async fn executions(
    plugin: Option<&str>,
    status: Option<&str>,
    limit: usize,
    server: &ServerArgs,
) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
    if let Some(plugin) = plugin {
        query.push(("plugin", plugin.to_owned()));
    }
    if let Some(status) = status {
        query.push(("status", status.to_owned()));
    }
    let request = client
        .request(Method::GET, &["v1", "executions"])?
        .query(&query);
    let list: Vec<ExecutionSummary> = client.send(request).await?;
    if server.json {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        println!("no executions yet; run a plugin with `junction invoke <plugin>`");
        return Ok(());
    }
    println!(
        "{:<32}  {:<20} {:<18} {:<22} {:>9}",
        "ID", "PLUGIN", "EVENT", "STATUS", "WALL MS"
    );
    for e in list {
        let status = match e.failure {
            Some(failure) => format!("failed: {}", kebab(&failure)),
            None => e.status.clone(),
        };
        println!(
            "{:<32}  {:<20} {:<18} {:<22} {:>9.1}",
            e.id, e.plugin, e.event_kind, status, e.wall_time_ms
        );
    }
    Ok(())
}

/// `junction logs <id>`: one execution in full.
pub async fn logs(id: &str, server: &ServerArgs) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let record: ExecutionRecord = client.get(&["v1", "executions", id]).await?;
    if server.json {
        print_json(&record);
    } else {
        println!(
            "{} `{}` event {} of plugin {}",
            record.id, record.event_kind, record.event_id, record.plugin
        );
        print_record(&record);
    }
    Ok(())
}

/// `junction rollback`.
pub async fn rollback(
    plugin: &str,
    version: Option<u32>,
    server: &ServerArgs,
) -> Result<(), CliError> {
    let client = Client::new(server)?;
    let detail: PluginDetail = client
        .send_json(
            Method::POST,
            &["v1", "plugins", plugin, "rollback"],
            &serde_json::json!({ "version": version }),
        )
        .await?;
    if server.json {
        print_json(&detail);
    } else {
        println!(
            "{} now runs version {} (sha256 {})",
            detail.summary.name, detail.summary.active_version, detail.summary.sha256
        );
    }
    Ok(())
}

/// `junction undeploy`.
pub async fn undeploy(plugin: &str, server: &ServerArgs) -> Result<(), CliError> {
    let client = Client::new(server)?;
    client.delete(&["v1", "plugins", plugin]).await?;
    if !server.json {
        println!("{plugin} deleted with every version, its artifacts and its kv data");
    }
    Ok(())
}
