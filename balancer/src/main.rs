//! `balancer`: accepts TCP connections on one address and hands each to the next of several
//! backends in turn (round robin), skipping a backend that refuses the connection. It sits in
//! front of the ingest replicas on the published host port; it reads nothing of the bytes, so
//! HTTP keep-alive connections stay on the replica they were opened to. It survives failing
//! accepts and sheds load beyond a connection cap (see [`limits`]).

mod limits;
mod pool;
mod proxy;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fleet_common::settings::BalancerSettings;
use fleet_common::settings::env::{
    BALANCER_CONNECT_TIMEOUT, BALANCER_IDLE_TIMEOUT, BALANCER_KEEPALIVE, BALANCER_MAX_CONNECTIONS,
};

/// The command line (every option also from the environment): the settings the orchestrator
/// gives the balancer, and the limits only a person running it by hand sets.
#[derive(Debug, Parser)]
#[command(name = "balancer", version, about)]
struct Cli {
    /// Where to listen and the backends.
    #[command(flatten)]
    settings: BalancerSettings,
    /// Longest wait for one backend to accept before the next is tried.
    #[arg(long, env = BALANCER_CONNECT_TIMEOUT, default_value = "2s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Connections proxied at once; more are closed at once (each takes two descriptors).
    #[arg(long, env = BALANCER_MAX_CONNECTIONS, default_value_t = 4096)]
    max_connections: usize,
    /// A connection with no byte either way for this long is closed.
    #[arg(long, env = BALANCER_IDLE_TIMEOUT, default_value = "5m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// TCP keepalive on both sides: silence before the first probe, and between probes.
    #[arg(long, env = BALANCER_KEEPALIVE, default_value = "30s", value_parser = humantime::parse_duration)]
    keepalive: Duration,
    /// More logs (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.settings.validate().context("checking the settings")?;
    fleet_common::logging::init(cli.verbose);
    let BalancerSettings { listen, backends } = cli.settings;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let limits = limits::Limits {
        max_connections: cli.max_connections.max(1),
        idle_timeout: cli.idle_timeout,
        keepalive: cli.keepalive,
    };
    tracing::info!(%listen, ?backends, ?limits, "balancing");
    let pool = pool::Pool::new(backends, cli.connect_timeout);
    tokio::select! {
        () = proxy::serve(listener, pool, limits) => Ok(()),
        () = fleet_common::shutdown::signal() => Ok(()),
    }
}
