//! `pos`: the one binary of the POS settlement mesh. See `pos --help`.

use clap::Parser;
use pos::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    pos_common::telemetry::init(cli.telemetry.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pos: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
