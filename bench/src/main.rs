//! `ingest-bench`: drives ingest's `POST /events` with N concurrent connections for a bounded
//! time and reports accepted events/s and acknowledgement latency (p50/p99) for one event per
//! request and for batches; then, in the same run, the raw produce rate of a tuned rdkafka
//! producer (the one `broker-bench` uses: acks=all, idempotent, linger 10 ms, large batches)
//! against the same broker, and the ratio of the two.
//!
//! Every event is valid and has a fresh `event_id`, so a running consumer stores them all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use fleet_common::{EventTime, TelemetryEvent, Vin};
use ingest_bench::produce::{Settings, produce_for};
use uuid::Uuid;

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

/// A fresh valid event of vehicle `serial`.
fn event(serial: u64, seq: u64) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        Vin::from_serial("YS2", serial),
        seq,
        EventTime(Utc::now()),
    )
}

/// What one HTTP scenario measured.
#[derive(Debug, Default)]
struct HttpRun {
    requests: usize,
    accepted_events: usize,
    latencies: Vec<Duration>,
    /// Requests by status (or `error` when no answer came).
    statuses: BTreeMap<String, usize>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `concurrency` connections post `batch` events per request for `warmup + duration`; only
/// requests started after the warm-up count.
async fn http_scenario(cli: &Cli, batch: usize, scenario: u64) -> anyhow::Result<HttpRun> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(cli.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let start = Instant::now();
    let measure_from = start + cli.warmup;
    let end = measure_from + cli.duration;
    let tasks: Vec<_> = (0..cli.concurrency as u64)
        .map(|task| {
            let client = client.clone();
            let url = cli.ingest_url.clone();
            // One VIN range per connection and scenario, so seqs stay per vehicle.
            let base = 8_000_000 + scenario * 100_000 + task * 1_000;
            tokio::spawn(async move {
                let mut run = HttpRun::default();
                let mut seq = 0;
                loop {
                    let sent_at = Instant::now();
                    if sent_at >= end {
                        break;
                    }
                    let events: Vec<TelemetryEvent> =
                        (0..batch as u64).map(|i| event(base + i, seq)).collect();
                    seq += 1;
                    let body = if batch == 1 {
                        serde_json::to_vec(&events[0])
                    } else {
                        serde_json::to_vec(&events)
                    }
                    .expect("events serialize");
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let (status, accepted) = match answer {
                        Ok(response) => {
                            let status = response.status();
                            let accepted = match response.bytes().await {
                                Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                                    .ok()
                                    .and_then(|v| v["accepted"].as_u64())
                                    .unwrap_or(0),
                                Err(_) => 0,
                            };
                            (status.as_u16().to_string(), accepted as usize)
                        }
                        Err(e) => {
                            let kind = if e.is_timeout() { "timeout" } else { "error" };
                            (kind.to_owned(), 0)
                        }
                    };
                    let latency = sent_at.elapsed();
                    if sent_at < measure_from {
                        continue;
                    }
                    run.requests += 1;
                    run.accepted_events += accepted;
                    *run.statuses.entry(status.clone()).or_default() += 1;
                    if status == "200" {
                        run.latencies.push(latency);
                    }
                    if status != "200" {
                        // Do not hammer a failing service.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                run
            })
        })
        .collect();
    let mut total = HttpRun::default();
    for task in tasks {
        let run = task.await.context("load task")?;
        total.requests += run.requests;
        total.accepted_events += run.accepted_events;
        total.latencies.extend(run.latencies);
        for (status, n) in run.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
    }
    total.latencies.sort();
    Ok(total)
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
        let run = http_scenario(&cli, batch, scenario as u64).await?;
        let secs = cli.duration.as_secs_f64();
        let rate = run.accepted_events as f64 / secs;
        http_rates.push((batch, rate));
        println!(
            "ingest, {batch:>3} event(s)/request: {:>9.0} accepted events/s, {:>8.1} requests/s, \
             ack latency p50 {} p99 {} (of {} requests, statuses {:?})",
            rate,
            run.requests as f64 / secs,
            ms(percentile(&run.latencies, 50.0)),
            ms(percentile(&run.latencies, 99.0)),
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
