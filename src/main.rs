use clap::Parser;
use stackbinder::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stackbinder::telemetry::init();
    Cli::parse().run().await
}
