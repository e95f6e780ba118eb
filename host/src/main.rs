//! The `junction` binary: parses the command line, sets up logging, and
//! reports errors at the edge.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    let cli = junction_host::cli::Cli::parse();
    match junction_host::cli::dispatch(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let err = anyhow::Error::from(err);
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
