//! `ingest-bench`: drives ingest's `POST /events` with N concurrent connections for a bounded
//! time and reports accepted events/s and acknowledgement latency (p50/p99) for one event per
//! request and for batches; then, in the same run, the raw produce rate of a tuned rdkafka
//! producer (the one `broker-bench` uses: acks=all, idempotent, linger 10 ms, large batches)
//! against the same broker, and the ratio of the two.
//!
//! Every event is valid and has a fresh `event_id`, so a running consumer stores them all.

use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use ingest_bench::load::{self, Load, Pace, quantile};
use ingest_bench::produce::{Settings, produce_for};

/// Load generator for fleet's ingest, compared with a plain Kafka producer.
#[derive(Debug, Parser)]
#[command(name = "ingest-bench", version, about)]
struct Cli {
    /// Ingest's events endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/events")]
    ingest_url: String,

    /// Kafka bootstrap address of the same broker, as reachable from this host.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_bootstrap: String,

    /// Topic the raw producer writes to (the one ingest writes to).
    #[arg(long, default_value = "telemetry")]
    topic: String,

    /// Measured time of each scenario (e.g. `20s`).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Unmeasured time before each HTTP scenario (connections, producer warm-up).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// Concurrent HTTP connections (one request in flight on each).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,

    /// Events per request in each HTTP scenario, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    batch_sizes: Vec<usize>,

    /// Records the raw producer keeps in flight at most.
    #[arg(long, default_value_t = 10_000)]
    kafka_in_flight: usize,

    /// Skip the raw producer.
    #[arg(long)]
    no_kafka: bool,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.concurrency == 0 || cli.batch_sizes.contains(&0) {
        bail!("--concurrency and --batch-sizes must be at least 1");
    }
    println!(
        "ingest-bench: {} with {} connections, {} per scenario after {} warm-up; Kafka {} topic {}",
        cli.ingest_url,
        cli.concurrency,
        humantime::format_duration(cli.duration),
        humantime::format_duration(cli.warmup),
        cli.kafka_bootstrap,
        cli.topic
    );
    let mut http_rates = Vec::new();
    for (scenario, &batch) in cli.batch_sizes.iter().enumerate() {
        let load = Load {
            url: cli.ingest_url.clone(),
            batch,
            pace: Pace::Closed {
                connections: cli.concurrency,
            },
            warmup: cli.warmup,
            duration: cli.duration,
            samples_per_s: 0.0,
            run: 80 + scenario as u64,
        };
        let run = load::run(load, None).await?;
        let secs = cli.duration.as_secs_f64();
        let rate = run.accepted as f64 / secs;
        http_rates.push((batch, rate));
        println!(
            "ingest, {batch:>3} event(s)/request: {:>9.0} accepted events/s, {:>8.1} requests/s, \
             ack latency p50 {} p99 {} (of {} requests, statuses {:?})",
            rate,
            run.requests as f64 / secs,
            ms(quantile(&run.latencies, 0.5)),
            ms(quantile(&run.latencies, 0.99)),
            run.requests,
            run.statuses
        );
    }
    if !cli.no_kafka {
        // The same tuned producer as `broker-bench`, so that the ratio is against what the
        // broker really takes from one producer.
        let producer = Settings::Tuned.producer(&cli.kafka_bootstrap, "ingest-bench")?;
        let run = produce_for(
            &producer,
            &cli.topic,
            cli.duration,
            cli.kafka_in_flight,
            7_000_000,
        )
        .await?;
        let rate = run.rate();
        println!(
            "raw rdkafka producer ({}; up to {} in flight): {:>9.0} acked records/s \
             ({} acked, {} failed in {:.1} s; ack latency p50 {} p99 {})",
            Settings::Tuned.describe(),
            cli.kafka_in_flight,
            rate,
            run.acked,
            run.failed,
            run.elapsed.as_secs_f64(),
            ms(run.latency(0.5)),
            ms(run.latency(0.99)),
        );
        for (batch, http) in http_rates {
            println!(
                "ratio, {batch:>3} event(s)/request: ingest / raw producer = {:.3} ({http:.0} / {rate:.0})",
                http / rate
            );
        }
    }
    Ok(())
}
