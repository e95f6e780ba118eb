//! The `junction` binary: parses the command line, sets up logging, and
//! reports errors at the edge.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("JUNCTION_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
