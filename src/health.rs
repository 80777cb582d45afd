//! `pos health`: asks a server's gRPC health service, as Kubernetes' probes and grpcurl
//! do, from the image itself (it has no shell and no grpcurl): the chart's `helm test`
//! Pod runs it against the edge.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Command, FromArgMatches};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[derive(Debug, Args)]
struct HealthFlags {
    /// The server to ask, e.g. http://pos-mesh-edge:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    addr: String,
    /// The service whose health to ask; empty: the server as a whole.
    #[arg(long, default_value = "")]
    service: String,
    /// Seconds to wait for an answer.
    #[arg(long = "timeout-secs", default_value_t = 5)]
    timeout_secs: u64,
}

pub fn command() -> Command {
    HealthFlags::augment_args(Command::new("health"))
        .about("Asks a server's gRPC health; exits 0 only when it is SERVING")
        .long_about(None)
}

/// Prints the status; an error (exit 1) unless it is SERVING.
pub async fn run(matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let flags = HealthFlags::from_arg_matches(matches)?;
    let timeout = Duration::from_secs(flags.timeout_secs);
    let channel = tonic::transport::Endpoint::from_shared(flags.addr.clone())
        .with_context(|| format!("{} is not a URL", flags.addr))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", flags.addr))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: flags.service.clone(),
        })
        .await
        .with_context(|| format!("{} did not answer its health", flags.addr))?;
    let status = answer.into_inner().status();
    println!("{}", status.as_str_name());
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "{} is {}",
        flags.addr,
        status.as_str_name()
    );
    Ok(())
}
