//! `sink-bench`: how fast the consumer moves a backlog from Kafka into PostgreSQL, against the
//! physical limit of the same server.
//!
//! Against a running stack (`fleet launch-infra`): stops the consumer's containers (every
//! replica), produces N valid events to the input topic from the host, starts the consumer and
//! times it until `consumer_offsets` reaches the topic's end offsets (and checks that `diag` grew
//! by exactly N rows). Then, in the same run, reads the same N records again with a bare
//! librdkafka consumer that fetches as the consumer does (the read limit of one reader), copies
//! the same N rows with one binary `COPY ... FROM STDIN` into a scratch table shaped like
//! `diag` (same constraints and indexes) on the same server (the write limit), and prints the
//! rates and the consumer's ratio to each.

mod backlog;
mod read;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use clap::Parser;

use ingest_bench::events::Events;
use ingest_bench::{copy, load_average, stack};

/// Consumer throughput into PostgreSQL for a backlog, compared with a plain binary COPY.
#[derive(Debug, Parser)]
#[command(name = "sink-bench", version, about)]
struct Cli {
    /// Kafka bootstrap address of the stack's broker, as reachable from this host.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_bootstrap: String,

    /// Input topic the consumer reads.
    #[arg(long, default_value = "telemetry")]
    topic: String,

    /// The consumer's group (its key in `consumer_offsets`).
    #[arg(long, default_value = "fleet-consumer")]
    group: String,

    /// The stack's name: the consumer's containers are those fleet labelled with it.
    #[arg(long, default_value = "fleet")]
    stack: String,

    /// PostgreSQL host, as reachable from this host.
    #[arg(long, default_value = "127.0.0.1")]
    pg_host: String,

    /// PostgreSQL port on this host.
    #[arg(long, default_value_t = 5432)]
    pg_port: u16,

    /// PostgreSQL role: the schema's owner, which may create the scratch table of the COPY
    /// baseline (the services' role `fleet` may not).
    #[arg(long, default_value = fleet_common::roles::ADMIN_ROLE)]
    pg_user: String,

    /// PostgreSQL database.
    #[arg(long, default_value = "av_telemetry")]
    pg_database: String,

    /// File holding the PostgreSQL password. Default: the default stack's state file,
    /// `~/.local/state/fleet/<stack>/postgres-admin-password`.
    #[arg(long)]
    pg_password_file: Option<PathBuf>,

    /// Events in the backlog.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,

    /// Vehicles the events are spread over (each reports once per second of event time).
    #[arg(long, default_value_t = 1_000)]
    vehicles: u64,

    /// Records the producer keeps unacknowledged at most.
    #[arg(long, default_value_t = 50_000)]
    in_flight: usize,

    /// The consumer's `consumer.fetch_wait`, for the bare reader.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    fetch_wait: Duration,

    /// Longest wait for the consumer to store the backlog.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

impl Cli {
    fn password_file(&self) -> anyhow::Result<PathBuf> {
        if let Some(file) = &self.pg_password_file {
            return Ok(file.clone());
        }
        let home = std::env::var_os("HOME").context("HOME is not set; pass --pg-password-file")?;
        Ok(PathBuf::from(home)
            .join(".local/state/fleet")
            .join(&self.stack)
            .join(fleet_orchestrator::state::ADMIN_PASSWORD_FILE))
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.pg_host)
            .port(self.pg_port)
            .user(&self.pg_user)
            .dbname(&self.pg_database)
            .application_name("sink-bench");
        config
    }
}

/// What the consumer run measured.
struct ConsumerRun {
    /// From `docker start` to the first committed batch (process start and group join).
    first_batch: Duration,
    /// From `docker start` to the last offset stored.
    done: Duration,
}

fn rate(rows: u64, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

/// Starts the consumer's containers and polls `consumer_offsets` until it holds `ends`.
async fn time_consumer(
    cli: &Cli,
    client: &tokio_postgres::Client,
    containers: &[String],
    ends: &std::collections::BTreeMap<i32, i64>,
) -> anyhow::Result<ConsumerRun> {
    let before = stack::stored_offsets(client, &cli.group, &cli.topic).await?;
    let started = Instant::now();
    stack::docker("start", containers).await?;
    let mut first_batch = None;
    loop {
        let stored = stack::stored_offsets(client, &cli.group, &cli.topic).await?;
        let now = started.elapsed();
        if first_batch.is_none() && stored != before {
            first_batch = Some(now);
            eprintln!(
                "sink-bench: first batch committed {:.1} s after start",
                now.as_secs_f64()
            );
        }
        if &stored == ends {
            return Ok(ConsumerRun {
                first_batch: first_batch.unwrap_or(now),
                done: now,
            });
        }
        if now > cli.timeout {
            bail!(
                "the consumer did not store the backlog in {:?}: stored {stored:?}, end {ends:?}",
                cli.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.events > 0 && cli.vehicles > 0 && cli.in_flight > 0,
        "--events, --vehicles and --in-flight must be at least 1"
    );
    let client = stack::connect(cli.pg_config(), &cli.password_file()?).await?;
    let containers = stack::service_containers(&cli.stack, "consumer").await?;
    println!(
        "sink-bench: {} events of {} vehicles; Kafka {} topic {}; PostgreSQL {}:{}/{}; consumer {}; load average {}",
        cli.events,
        cli.vehicles,
        cli.kafka_bootstrap,
        cli.topic,
        cli.pg_host,
        cli.pg_port,
        cli.pg_database,
        containers.join(", "),
        load_average()
    );

    stack::docker("stop", &containers).await?;
    let ends_before = stack::end_offsets(&cli.kafka_bootstrap, &cli.topic).await?;
    let stored_before = stack::stored_offsets(&client, &cli.group, &cli.topic).await?;
    if stored_before != ends_before {
        stack::docker("start", &containers).await?;
        bail!(
            "the consumer had not stored everything in {} (stored {stored_before:?}, end {ends_before:?}); wait until it caught up and run again",
            cli.topic
        );
    }
    let rows_before = stack::diag_rows(&client).await?;

    let run = Utc::now().timestamp() as u64;
    let events = Events::new(run, cli.vehicles, cli.events, Utc::now());
    let backlog =
        backlog::produce(&cli.kafka_bootstrap, &cli.topic, &events, cli.in_flight).await?;
    println!(
        "backlog:  {} events produced in {:.1} s ({:.0} acked records/s, acks=all, idempotent)",
        cli.events,
        backlog.elapsed.as_secs_f64(),
        rate(cli.events, backlog.elapsed)
    );
    let ends = stack::end_offsets(&cli.kafka_bootstrap, &cli.topic).await?;
    let added = ends.values().sum::<i64>() - ends_before.values().sum::<i64>();
    ensure!(
        added == cli.events as i64,
        "the topic grew by {added} records, not {}",
        cli.events
    );

    let consumer = time_consumer(&cli, &client, &containers, &ends).await?;
    let stored = stack::diag_rows(&client).await? - rows_before;
    ensure!(
        stored == cli.events as i64,
        "diag grew by {stored} rows, not {}",
        cli.events
    );
    let draining = consumer.done - consumer.first_batch;
    let consumer_rate = rate(cli.events, draining);
    println!(
        "consumer: {} rows into diag (+ aggregates + offsets) in {:.1} s from the first batch: {:.0} rows/s; \
         {:.1} s from `docker start` incl. {:.1} s start-up and group join ({:.0} rows/s)",
        cli.events,
        draining.as_secs_f64(),
        consumer_rate,
        consumer.done.as_secs_f64(),
        consumer.first_batch.as_secs_f64(),
        rate(cli.events, consumer.done)
    );

    let read = read::backlog(
        &cli.kafka_bootstrap,
        &cli.topic,
        &ends_before,
        &ends,
        cli.fetch_wait,
        cli.timeout,
    )
    .await?;
    ensure!(
        read.records == cli.events,
        "the bare reader read {} records, not {}",
        read.records,
        cli.events
    );
    let read_rate = rate(read.records, read.elapsed);
    println!(
        "read:     {} records ({:.0} MB of payload) by a bare librdkafka consumer with the consumer's fetch settings (fetch wait {:?}) in {:.1} s: {:.0} records/s",
        read.records,
        read.bytes as f64 / 1e6,
        cli.fetch_wait,
        read.elapsed.as_secs_f64(),
        read_rate
    );

    copy::create_scratch(&client).await?;
    let copied = copy::copy_rows(&client, &events, &backlog.positions).await;
    copy::drop_scratch(&client).await?;
    let copied = copied?;
    let copy_rate = rate(cli.events, copied);
    println!(
        "COPY:     {} rows, one binary COPY FROM STDIN into {} (diag's columns, constraints and indexes) in {:.1} s: {:.0} rows/s",
        cli.events,
        copy::SCRATCH,
        copied.as_secs_f64(),
        copy_rate
    );
    println!(
        "ratio:    consumer / COPY = {:.3} ({consumer_rate:.0} / {copy_rate:.0}); consumer / bare read = {:.3} ({consumer_rate:.0} / {read_rate:.0}); load average {}",
        consumer_rate / copy_rate,
        consumer_rate / read_rate,
        load_average()
    );
    Ok(())
}
