//! fleet consumer: reads telemetry events from Kafka in batches and stores each batch, rows and
//! offsets together, in one PostgreSQL transaction; poison records go to the dead-letter topic.
//!
//! Modules: [`cli`] (options), [`kafka`] (consumer, producers, broker probe), [`ownership`]
//! (which partitions this replica reads, from the registry's live replicas), [`batch`] and
//! [`row`] (what a batch holds), [`dlq`] (poison decision and dead letters), [`sink`]
//! (PostgreSQL), [`sqlstate`] (a record's fault or the server's), [`analytics`] (aggregates
//! in the batch's transaction, published after it), [`flush`] (writing one batch, in parts
//! when it does not fit the statement limit), [`pipeline`] (the loop), [`http`], [`health`]
//! and [`metrics`] (endpoints), [`backoff`].

mod analytics;
mod backoff;
mod batch;
mod cli;
mod dlq;
mod flush;
mod health;
mod http;
mod kafka;
mod metrics;
mod ownership;
mod pipeline;
mod row;
mod schedule;
mod sink;
mod sqlstate;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::cli::Cli;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::sink::{PgSettings, PgSink};

/// mimalloc instead of glibc's allocator: every record is decoded into owned strings and freed
/// with its batch, and glibc's malloc and free took a third of the consumer's CPU while it
/// drained a backlog (`perf`, results/end_to_end.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Limit of a PostgreSQL connect or transaction.
const PG_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit of one dead-letter delivery.
const DLQ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between retries.
const RETRY_CAP: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log_level = fleet_common::logging::init_reloadable(cli.verbose);
    run(cli, log_level).await
}

async fn run(cli: Cli, log_level: fleet_common::logging::LogLevel) -> anyhow::Result<()> {
    cli.settings.validate().context("checking the settings")?;
    let password = cli.pg_password().context("reading the settings")?;
    if cli.check_analytics {
        return check_analytics(&cli, password).await;
    }
    let instance_id = cli.instance_id().context("reading the settings")?;
    let replica_index = cli.replica_index().context("reading the settings")?;
    tracing::info!(brokers = %cli.kafka_brokers, topic = %cli.kafka_topic, group = %cli.group,
        %instance_id, postgres = %cli.pg_target(), "starting");

    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        fleet_common::shutdown::signal().await;
        let _ = stop_tx.send(true);
    });

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding the HTTP listener to {}", cli.listen))?;
    let app = http::app(http::AppState {
        health: health.clone(),
        metrics: metrics.clone(),
    });
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future(),
    );
    tracing::info!(listen = %cli.listen, "HTTP endpoints up");
    let registry_args =
        fleet_registry::RegistryArgs::from_env().context("reading the registry settings")?;
    let runs = vec![cli.kafka_topic.clone(), format!("group {}", cli.group)];
    let limits = pipeline::BatchLimits {
        max_records: cli.batch_max_records.as_usize(),
        max_wait: cli.batch_max_wait,
    };
    let mut initial = fleet_registry::LiveConfig::default();
    initial.consumer.batch_max_records = cli.batch_max_records;
    initial.consumer.batch_max_wait = cli.batch_max_wait;
    let membership = fleet_registry::Membership {
        role: fleet_registry::ROLE_CONSUMER,
        port: cli.listen.port(),
        runs: runs.clone(),
        initial,
        watch_roles: &[fleet_registry::ROLE_CONSUMER],
    };
    let registry = fleet_registry::join(&registry_args, membership, Some(log_level))
        .context("joining the registry")?;
    let identity = ownership::Identity {
        member_id: registry_args.member_id(fleet_registry::ROLE_CONSUMER),
        replica_index,
        replicas: cli.replicas,
        runs,
    };
    let limits = follow_limits(registry.as_ref(), limits);

    let mut sink = PgSink::new(pg_settings(&cli, password));
    if !connect_postgres(&mut sink, &health, stop_rx.clone()).await {
        return finish(server).await;
    }

    let topic = cli.kafka_topic.clone();
    let consumer_settings = kafka::ConsumerSettings {
        brokers: cli.kafka_brokers.clone(),
        group: cli.group.clone(),
        instance_id: instance_id.clone(),
        debug: cli.kafka_debug.clone(),
        fetch_wait: cli.fetch_wait,
    };
    let consumer =
        Arc::new(kafka::create(&consumer_settings).context("starting the Kafka consumer")?);
    health.set_subscribed(true);
    let producer = kafka::producer(&cli.kafka_brokers, &instance_id)
        .context("starting the dead-letter producer")?;
    let dead_letters =
        dlq::KafkaDeadLetters::new(producer, &topic, &cli.kafka_dlq_topic, DLQ_TIMEOUT);
    let publisher = if cli.publish_analytics {
        let producer = kafka::publisher(&cli.kafka_brokers, &instance_id)
            .context("starting the analytics producer")?;
        let settings = analytics::PublishSettings {
            summary_topic: cli.summary_topic.clone(),
            metrics_topic: cli.metrics_topic.clone(),
            histograms_topic: cli.histograms_topic.clone(),
            timeout: cli.publish_timeout,
            interval: cli.publish_interval,
        };
        Some(analytics::Publisher::new(
            producer,
            settings,
            metrics.clone(),
        ))
    } else {
        None
    };
    let (partitions_tx, partitions_rx) = watch::channel(None);
    let probe = tokio::spawn(kafka::probe_broker(
        Arc::downgrade(&consumer),
        topic.clone(),
        health.clone(),
        partitions_tx,
        Duration::from_secs(5),
        stop_rx.clone(),
    ));
    let share = ownership::follow(
        identity,
        partitions_rx,
        registry
            .as_ref()
            .and_then(|r| r.members(fleet_registry::ROLE_CONSUMER)),
        Duration::from_millis(200),
    );

    let settings = pipeline::Settings {
        topic,
        idle_check: Duration::from_secs(5),
        retry_initial: Duration::from_millis(100),
        retry_cap: RETRY_CAP,
    };
    pipeline::Pipeline::new(
        consumer.clone(),
        pipeline::Inputs { share, limits },
        sink,
        dead_letters,
        publisher,
        settings,
        health.clone(),
        metrics,
    )
    .run(stop_rx)
    .await;
    health.set_subscribed(false);
    let _ = probe.await;
    // Closing waits for librdkafka's outstanding requests; keep it off the async workers.
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .context("closing the Kafka consumer")?;
    tracing::info!("consumer closed");
    if let Some(registry) = registry {
        registry.close().await;
    }
    finish(server).await
}

/// The batch limits, following the live `consumer.batch_max_records` and
/// `consumer.batch_max_wait` when the registry is joined (values it refuses never reach here:
/// the live configuration is checked when written and when read).
fn follow_limits(
    registry: Option<&fleet_registry::Registry>,
    start: pipeline::BatchLimits,
) -> watch::Receiver<pipeline::BatchLimits> {
    let (tx, rx) = watch::channel(start);
    if let Some(registry) = registry {
        fleet_registry::forward(registry.config(), tx, |live| pipeline::BatchLimits {
            max_records: live.consumer.batch_max_records.as_usize(),
            max_wait: live.consumer.batch_max_wait,
        });
    }
    rx
}

fn pg_settings(cli: &Cli, password: Option<String>) -> PgSettings {
    PgSettings {
        config: pg_config(cli, password),
        target: cli.pg_target(),
        group: cli.group.clone(),
        topic: cli.kafka_topic.clone(),
        timeout: PG_TIMEOUT,
        analytics: analytics::AnalyticsSettings {
            topic: cli.kafka_topic.clone(),
            allowed_lateness: cli.allowed_lateness,
            bins: cli.histogram_bins,
        },
    }
}

fn pg_config(cli: &Cli, password: Option<String>) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&cli.pg_host)
        .port(cli.pg_port)
        .user(&cli.pg_user)
        .dbname(&cli.pg_database)
        .application_name("fleet-consumer")
        .connect_timeout(PG_TIMEOUT);
    if let Some(password) = password {
        config.password(password);
    }
    config
}

/// `--check-analytics`: compares the aggregates with `diag` and prints the result.
async fn check_analytics(cli: &Cli, password: Option<String>) -> anyhow::Result<()> {
    let target = cli.pg_target();
    let (client, connection) = pg_config(cli, password)
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {target}"))?;
    let driver = tokio::spawn(connection);
    let report = analytics::check(&client, &cli.histogram_bins)
        .await
        .with_context(|| format!("checking the aggregates in PostgreSQL at {target}"))?;
    drop(client);
    let _ = driver.await;
    println!(
        "diag rows {}, windows {}, vehicles {}, make/model rows {}, histogram bins {}",
        report.diag_rows,
        report.windows,
        report.vehicles,
        report.make_models,
        report.histogram_bins
    );
    for m in &report.mismatches {
        println!("MISMATCH {m}");
    }
    if report.is_consistent() {
        println!("aggregates consistent with diag");
        Ok(())
    } else {
        anyhow::bail!(
            "{} aggregate rows differ from diag",
            report.mismatches.len()
        )
    }
}

/// Connects to PostgreSQL (and applies the schema), retrying with backoff. False when asked
/// to stop first.
async fn connect_postgres(
    sink: &mut PgSink,
    health: &Health,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(Duration::from_millis(200), RETRY_CAP);
    loop {
        match sink.connect().await {
            Ok(()) => {
                health.set_postgres_ok(true);
                return true;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "PostgreSQL not reachable yet");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return false,
                }
            }
        }
    }
}

async fn finish(server: tokio::task::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    server
        .await
        .context("joining the HTTP server")?
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
