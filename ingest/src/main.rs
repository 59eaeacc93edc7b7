//! `ingest`: the HTTP front door of the fleet telemetry pipeline.
//!
//! `POST /events` validates telemetry events and answers only after the broker acknowledged
//! them; `GET /events` is the live fleet dashboard (JSON for programs), fed by
//! `GET /events/stream` (Server-Sent Events); `GET /metrics` is the Prometheus exposition and
//! `GET /openapi.json` describes the API. Bodies may be gzip-encoded; vehicles
//! may be rate-limited and required to present bearer tokens. See [`cli::Cli`] for the settings.

mod app;
mod auth;
mod broker;
mod cli;
mod dashboard;
mod error;
mod metrics;
mod negotiate;
mod offload;
mod openapi;
mod page;
mod producer;
mod rate_limit;
mod routes;
mod serve;
mod shedding;
#[cfg(test)]
mod test_support;
mod topic_counts;

// The request decoders live in the library half of the package (for the fuzz targets).
use ingest::{decode, encoding};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::app::{AppState, Settings, app};
use crate::auth::Tokens;
use crate::cli::Cli;
use crate::dashboard::{Dashboard, DashboardLimits, MapArea, OutputTopics};
use crate::producer::KafkaBroker;
use crate::serve::ConnectionLimits;
use crate::shedding::RequestLimits;

/// mimalloc instead of glibc's allocator: every request allocates its body, records and
/// answer, and glibc's malloc and free were about a seventh of ingest's CPU under single-event
/// POSTs (`perf`, results/end_to_end.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the final flush may take. By then every request has been answered, so anything
/// still queued was answered 503 and its sender keeps it; waiting longer gains nothing.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.settings.validate().context("checking the settings")?;
    let log_level = fleet_common::logging::init_reloadable(cli.verbose);
    let registry_args =
        fleet_registry::RegistryArgs::from_env().context("reading the registry settings")?;

    let tokens = cli
        .tokens_file
        .as_deref()
        .map(Tokens::load)
        .transpose()
        .context("loading the bearer tokens (INGEST_TOKENS_FILE)")?;
    let broker = KafkaBroker::new(
        &cli.kafka_brokers,
        &cli.kafka_topic,
        cli.producer_linger,
        cli.producer_max_in_flight,
    )
    .with_context(|| format!("setting up the Kafka producer for {}", cli.kafka_brokers))?;
    let mut state = AppState::new(
        Arc::new(broker.clone()),
        Settings {
            topic: cli.kafka_topic.clone(),
            max_body_bytes: cli.max_body_bytes,
            max_records_per_request: cli.max_records_per_request,
            produce_timeout: cli.produce_timeout,
            rate_limit_per_vin: cli.rate_limit_per_vin,
        },
    )
    .with_request_limits(RequestLimits {
        timeout: cli.request_timeout,
        max_concurrent: cli.max_concurrent_requests,
    });
    let dashboard_limits = DashboardLimits {
        vehicle_ttl: cli.dashboard_vehicle_ttl,
        map_vehicles: cli.dashboard_map_vehicles,
        max_message_bytes: cli.dashboard_max_message_bytes,
    };
    let dashboard = Arc::new(Dashboard::starting_now(
        MapArea {
            origin_lat: cli.map_origin_lat,
            origin_lon: cli.map_origin_lon,
            radius_m: cli.map_radius_m,
        },
        dashboard_limits,
    ));
    state = state.with_dashboard(dashboard.clone());
    dashboard::reader::spawn(
        cli.kafka_brokers.clone(),
        OutputTopics {
            summary: cli.summary_topic.clone(),
            metrics: cli.metrics_topic.clone(),
            histograms: cli.histograms_topic.clone(),
        },
        cli.dashboard_vehicle_ttl,
        dashboard,
    );
    dashboard::ticker::spawn(state.clone());
    match tokens {
        Some(tokens) => {
            tracing::info!(
                vehicles = tokens.vehicles(),
                dashboard_tokens = tokens.viewers(),
                dashboard_requires_token = cli.dashboard_requires_token,
                "bearer tokens required"
            );
            state = state.with_tokens(tokens, cli.dashboard_requires_token);
        }
        None => tracing::info!("no tokens file: POST /events needs no token"),
    }

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    tracing::info!(
        listen = %cli.listen,
        brokers = %cli.kafka_brokers,
        topic = %cli.kafka_topic,
        "ingest serving"
    );
    // Registered once it listens; on SIGTERM it leaves first, so vehicles move on.
    let mut initial = fleet_registry::LiveConfig::default();
    initial.ingest.rate_limit_per_vin = cli.rate_limit_per_vin;
    let membership = fleet_registry::Membership {
        role: fleet_registry::ROLE_INGEST,
        port: cli.listen.port(),
        runs: vec![cli.kafka_topic.clone()],
        initial,
        watch_roles: &[],
    };
    let registry = fleet_registry::join(&registry_args, membership, Some(log_level))
        .context("joining the registry")?;
    if let Some(registry) = &registry {
        follow_rate_limit(registry, &state);
    }
    let connection_limits = ConnectionLimits {
        max_connections: cli.max_connections,
        header_read_timeout: cli.request_timeout,
    };
    serve::serve(listener, app(state), connection_limits, async {
        fleet_common::shutdown::signal().await;
        if let Some(registry) = registry {
            registry.close().await;
        }
    })
    .await;

    tracing::info!("HTTP stopped, flushing the producer");
    // Every record answered 2xx is already acknowledged, so what a failed flush leaves behind
    // was answered 503 and is still held by its sender: worth a warning, not a failed exit.
    match broker.flush(FLUSH_TIMEOUT).await {
        Ok(()) => tracing::info!("ingest stopped"),
        Err(e) => {
            tracing::warn!(error = %e, "ingest stopped with records not delivered (all were answered 503)")
        }
    }
    Ok(())
}

/// Applies each change of the live `ingest.rate_limit_per_vin` to every vehicle's bucket (0
/// turns the limit off, as at start).
fn follow_rate_limit(registry: &fleet_registry::Registry, state: &AppState) {
    let limiter = state.rate_limiter.clone();
    fleet_registry::follow(
        registry.config(),
        limiter.per_second(),
        |live| live.ingest.rate_limit_per_vin,
        move |&rate| {
            limiter.set_per_second(rate);
            match rate {
                0 => tracing::info!("live rate limit applied: off"),
                rate => tracing::info!(per_vin_per_second = rate, "live rate limit applied"),
            }
        },
    );
}
