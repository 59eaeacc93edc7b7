//! `vehicle`: simulates K vehicles in one process, each a tokio task that reports telemetry to
//! ingest and keeps its events until they are acknowledged. See [`cli::Cli`] for the settings.

mod app;
mod backoff;
mod cli;
mod client;
mod driver;
mod geo;
mod identity;
mod motion;
mod outbox;
mod seeding;
mod sensors;
mod simulator;
mod stats;
mod terrain;
#[cfg(test)]
mod test_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::cli::Cli;
use crate::client::IngestClient;
use crate::driver::{Driver, DriverConfig, OUTBOX_CAPACITY};
use crate::geo::Origin;
use crate::identity::Identity;
use crate::simulator::{Simulator, World};
use crate::stats::{DeliveryHealth, VehicleStats};

/// How long pending events may still be sent after SIGTERM.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    fleet_common::logging::init(cli.verbose);

    let client = IngestClient::new(&cli.ingest_url).context("setting up the ingest client")?;
    let world = Arc::new(World::new(
        cli.seed,
        Origin {
            lat: cli.origin_lat,
            lon: cli.origin_lon,
        },
        cli.area_radius_m,
    ));
    let config = DriverConfig {
        report_interval: cli.report_interval,
        flush_timeout: FLUSH_TIMEOUT,
        outbox_capacity: OUTBOX_CAPACITY,
    };
    let health = Arc::new(DeliveryHealth::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);

    let mut fleet = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let end = cli
        .first_index
        .checked_add(cli.count)
        .context("VEHICLE_FIRST_INDEX + VEHICLE_COUNT overflows")?;
    for index in cli.first_index..end {
        let identity = Identity::of(&cli.catalogue, cli.seed, index);
        let stats = Arc::new(VehicleStats::new(&identity));
        let sim = Simulator::new(&world, identity, index);
        let driver = Driver::new(
            world.clone(),
            sim,
            index,
            client.clone(),
            stats.clone(),
            health.clone(),
            config.clone(),
        );
        fleet.push(stats);
        tasks.spawn(driver.run(stopped.clone()));
    }

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let fleet: app::Fleet = fleet.into();
    let server = tokio::spawn(
        axum::serve(listener, app::app(fleet.clone()))
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .into_future(),
    );
    tracing::info!(
        vehicles = cli.count,
        first_index = cli.first_index,
        seed = cli.seed,
        ingest = %cli.ingest_url,
        listen = %cli.listen,
        "vehicles started"
    );

    fleet_common::shutdown::signal().await;
    let _ = stop.send(true);
    // Each vehicle stops on its own after at most FLUSH_TIMEOUT; the margin covers scheduling.
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(FLUSH_TIMEOUT + Duration::from_secs(2), all_done)
        .await
        .is_err()
    {
        tracing::warn!("some vehicles did not finish flushing in time");
    }
    let _ = server_stop.send(());
    server
        .await
        .context("joining the stats server")?
        .context("serving /stats")?;
    let totals = stats::StatsReport::of(&fleet).totals;
    if totals.dropped > 0 {
        tracing::warn!(
            dropped = totals.dropped,
            "events never acknowledged (outbox overflow or still pending at shutdown)"
        );
    }
    tracing::info!(
        generated = totals.generated,
        acknowledged = totals.acknowledged,
        rejected = totals.rejected,
        dropped = totals.dropped,
        "vehicles stopped"
    );
    Ok(())
}
