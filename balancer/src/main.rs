//! `balancer`: accepts TCP connections on one address and hands each to the next of several
//! backends in turn (round robin), skipping a backend that refuses the connection. It sits in
//! front of the ingest replicas on the published host port; it reads nothing of the bytes, so
//! HTTP keep-alive connections stay on the replica they were opened to.

mod pool;
mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// The command line (every option also from the environment).
#[derive(Debug, Parser)]
#[command(name = "balancer", version, about)]
struct Cli {
    /// Address to accept connections on.
    #[arg(long, env = "BALANCER_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Backends as `host:port`, comma-separated; host names are resolved at each connection.
    #[arg(
        long,
        env = "BALANCER_BACKENDS",
        value_delimiter = ',',
        required = true
    )]
    backends: Vec<String>,
    /// Longest wait for one backend to accept before the next is tried.
    #[arg(long, env = "BALANCER_CONNECT_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// More logs (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    fleet_common::logging::init(cli.verbose);
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listen on {}", cli.listen))?;
    tracing::info!(listen = %cli.listen, backends = ?cli.backends, "balancing");
    let pool = pool::Pool::new(cli.backends, cli.connect_timeout);
    tokio::select! {
        result = proxy::serve(listener, pool) => result.context("accept connections"),
        () = fleet_common::shutdown::signal() => Ok(()),
    }
}
