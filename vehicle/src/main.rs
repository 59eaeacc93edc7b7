//! `vehicle`: simulates K vehicles in one process, driven by one task that coalesces their
//! events into shared batched requests to ingest and keeps each event until it is acknowledged.
//! See [`cli::Cli`] for the settings.

mod app;
mod backoff;
mod cli;
mod client;
mod endpoints;
mod faults;
mod geo;
mod identity;
mod legacy;
mod motion;
mod outbox;
mod seeding;
mod sensors;
mod simulation;
mod simulator;
mod stats;
mod terrain;
mod timing;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use fleet_common::settings::env::{
    VEHICLE_BATCH_MAX, VEHICLE_INGEST_URL, VEHICLE_MAX_IN_FLIGHT, VEHICLE_OUTBOX_CAPACITY,
};

use crate::cli::Cli;
use crate::client::Wire;
use crate::faults::FaultRates;
use crate::geo::Origin;
use crate::simulation::{Settings, Simulation};
use crate::simulator::World;
use crate::timing::Timing;

/// How long pending events may still be sent after SIGTERM.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.settings.validate().context("checking the settings")?;
    let log_level = fleet_common::logging::init_reloadable(cli.verbose);
    let registry_args =
        fleet_registry::RegistryArgs::from_env().context("reading the registry settings")?;

    client::events_url(&cli.ingest_url)
        .with_context(|| format!("checking {VEHICLE_INGEST_URL}"))?;
    let settings = Settings {
        world: World::new(
            cli.seed,
            Origin {
                lat: cli.origin_lat,
                lon: cli.origin_lon,
            },
            cli.area_radius_m,
        ),
        catalogue: cli.catalogue.clone(),
        first_index: cli.first_index,
        count: cli.count,
        faults: FaultRates {
            spike_rate: cli.fault_spike_rate,
            stuck_rate: cli.fault_stuck_rate,
            stuck_duration: cli.fault_stuck_duration,
        },
        wire: if cli.legacy_form {
            Wire::LegacyForm
        } else {
            Wire::Json
        },
        batch_max: usize::try_from(cli.batch_max).context(VEHICLE_BATCH_MAX)?,
        batch_wait: cli.batch_wait,
        max_in_flight: usize::try_from(cli.max_in_flight).context(VEHICLE_MAX_IN_FLIGHT)?,
        outbox_capacity: usize::try_from(cli.outbox_capacity).context(VEHICLE_OUTBOX_CAPACITY)?,
        flush_timeout: FLUSH_TIMEOUT,
        duration: cli.duration,
    };
    // Start from the command line; the registry, when there is one, feeds them live.
    let (timing_tx, timing) = tokio::sync::watch::channel(Timing {
        interval: cli.report_interval,
        jitter: cli.report_jitter,
    });
    let (urls_tx, ingest_urls) = tokio::sync::watch::channel(vec![cli.ingest_url.clone()]);
    let simulation =
        Simulation::new(settings, timing, ingest_urls).context("setting up the ingest client")?;
    let registry = join_registry(
        &registry_args,
        &cli,
        &simulation,
        log_level,
        timing_tx,
        urls_tx,
    )?;

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app::app(simulation.stats()))
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
        legacy_form = cli.legacy_form,
        listen = %cli.listen,
        duration = ?cli.duration,
        "vehicles started"
    );

    let totals = simulation.run(fleet_common::shutdown::signal()).await;
    if let Some(registry) = registry {
        registry.close().await;
    }
    let _ = server_stop.send(());
    server
        .await
        .context("joining the stats server")?
        .context("serving /stats")?;
    if totals.dropped > 0 {
        tracing::warn!(
            dropped = totals.dropped,
            "events never acknowledged (outbox overflow or still pending at shutdown)"
        );
    }
    totals.log("vehicles stopped");
    Ok(())
}

/// Registers this container (role `vehicle`, with its VINs) and feeds `timing` from the live
/// configuration and `urls` from the live ingest members (the command line's URL while none
/// is registered). `None` without a registry: the command line's values stay.
fn join_registry(
    args: &fleet_registry::RegistryArgs,
    cli: &Cli,
    simulation: &Simulation,
    log_level: fleet_common::logging::LogLevel,
    timing: tokio::sync::watch::Sender<Timing>,
    urls: tokio::sync::watch::Sender<Vec<String>>,
) -> anyhow::Result<Option<fleet_registry::Registry>> {
    let mut initial = fleet_registry::LiveConfig::default();
    initial.vehicles.report_interval = cli.report_interval;
    initial.vehicles.jitter = cli.report_jitter;
    let membership = fleet_registry::Membership {
        role: fleet_registry::ROLE_VEHICLE,
        port: cli.listen.port(),
        runs: simulation
            .stats()
            .vehicles
            .iter()
            .map(|v| v.vin.clone())
            .collect(),
        initial,
        watch_roles: &[fleet_registry::ROLE_INGEST],
    };
    let Some(registry) =
        fleet_registry::join(args, membership, Some(log_level)).context("joining the registry")?
    else {
        return Ok(None);
    };
    fleet_registry::forward(registry.config(), timing, |live| Timing {
        interval: live.vehicles.report_interval,
        jitter: live.vehicles.jitter,
    });
    if let Some(members) = registry.members(fleet_registry::ROLE_INGEST) {
        let fallback = cli.ingest_url.clone();
        fleet_registry::forward(members, urls, move |members| {
            let mut found: Vec<String> = members
                .iter()
                .map(|m| m.info.address.clone())
                .filter(|a| !a.is_empty())
                .collect();
            if found.is_empty() {
                found.push(fallback.clone());
            }
            found
        });
    }
    Ok(Some(registry))
}
