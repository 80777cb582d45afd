//! `kubectl-pos`, the kubectl plugin for pos-mesh (`kubectl pos …` once on PATH): the
//! roles' Deployments at a glance, and the settlement batch CronJobs run by hand and
//! listed. It speaks to the API server through the kubeconfig as kubectl does.

mod batch_list;
mod batch_run;
mod cli;
mod cluster;
mod error;
mod jobs;
mod labels;
mod manual_job;
mod status;
mod table;
mod wait;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{BatchCommand, Cli, Command};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            error::exit_code(&error)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cluster = cluster::Cluster::connect(&cli.connection).await?;
    match &cli.command {
        Command::Status => status::run(&cluster).await.map(|()| ExitCode::SUCCESS),
        Command::Batch(BatchCommand::Run(args)) => batch_run::run(&cluster, args).await,
        Command::Batch(BatchCommand::List(args)) => batch_list::run(&cluster, args)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}
