//! The `junction` binary: parses the command line, sets up logging, and
//! reports errors at the edge.

use clap::Parser;
use junction_host::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Only the server: a build's cargo would inherit the setting.
    let huge_pages =
        matches!(cli.command, Command::Serve(_)).then(junction_host::decline_huge_pages);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, huge_pages))
}

async fn run(cli: Cli, huge_pages: Option<std::io::Result<()>>) -> std::process::ExitCode {
    // `JUNCTION_LOG` takes tracing's filter syntax; `JUNCTION_LOG_FORMAT=json`
    // gives one JSON object per line for log collectors.
    let filter = EnvFilter::try_from_env("JUNCTION_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,junction=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("JUNCTION_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    if let Some(Err(err)) = huge_pages {
        tracing::debug!(error = %err, "transparent huge pages stay as the machine sets them");
    }
    match junction_host::cli::dispatch(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let err = anyhow::Error::from(err);
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
