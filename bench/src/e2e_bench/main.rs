//! `e2e-bench`: the whole stack's throughput and latency from the host, against a running stack
//! (`fleet launch-infra`; the same config file and `FLEET_*` overrides as fleet):
//!
//! For each batch size (events per request):
//! 1. **saturated**: `--connections` connections post as fast as ingest answers, for the warm-up
//!    and then the measured window: accepted events/s (from ingest's answers) and rows/s stored
//!    (the consumer's stored offsets, written in the same transaction as the rows) over the
//!    same window;
//! 2. the backlog drains;
//! 3. **half load**: half of the saturated end-to-end rate (the smaller of the two) is offered on
//!    a fixed schedule; a sample of accepted events is looked up in `diag` every few
//!    milliseconds: POST-to-row latency p50/p99/max;
//!
//! then, in the same run, the raw limits on the same servers: a tuned rdkafka producer into the
//! same topic (its records are valid events and are stored too), and one binary COPY into a
//! scratch copy of `diag`; and the ratios to them. The engines' container statistics (what
//! `docker stats` shows) sample every container during each phase, so that the saturated
//! resource can be named. At the end the rows added to `diag`
//! are checked against the records added to the topic: every record became a row.
//!
//! With `--offered`, only the half-load runs are made, at the rates given (one per batch size),
//! and the raw limits are left out: a quick comparison of the latency of two configurations at
//! the same load.
//!
//! Prints a Markdown block for `results/end_to_end.md`.

mod rows;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use fleet_orchestrator::commands::{Ctx, launch_fleet};
use fleet_orchestrator::output::ProgressMode;
use ingest_bench::events::Events;
use ingest_bench::produce::{Settings, produce_for};
use ingest_bench::stats::{self, Sampler, Summary};
use ingest_bench::{copy, load_average, stack};
use tokio::sync::mpsc;

use ingest_bench::load::{self, Load, Measured, Pace, quantile};

/// End-to-end throughput and POST-to-row latency of a running stack.
#[derive(Debug, Parser)]
#[command(name = "e2e-bench", version, about)]
struct Cli {
    /// fleet's config file (the stack's names and ports; `FLEET_*` overrides apply).
    #[arg(long, default_value = "config.master.toml")]
    config: PathBuf,
    /// Events per request, one scenario each, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    batch_sizes: Vec<usize>,
    /// Connections of the saturated runs (and most requests in flight at half load).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured window of every run.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each window.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Sampled events looked up in `diag` per second at half load.
    #[arg(long, default_value_t = 100.0)]
    latency_samples_per_s: f64,
    /// Time between two lookups of the sampled events.
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    poll_every: Duration,
    /// Measured time of the raw producer.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    raw_duration: Duration,
    /// Rows of the raw binary COPY.
    #[arg(long, default_value_t = 500_000)]
    copy_rows: u64,
    /// Time between two samples of the containers' statistics.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    sample_every: Duration,
    /// Events/s offered at half load, one per `--batch-sizes` entry: skips the saturated runs
    /// and the raw producer and COPY (the latency of two configurations at the same load).
    #[arg(long, value_delimiter = ',')]
    offered: Vec<f64>,
    /// Longest wait for the consumer to store a backlog between runs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
}

/// What one batch size measured.
struct Scenario {
    batch: usize,
    /// `None` with `--offered`.
    saturated: Option<Window>,
    half: Window,
    offered: f64,
    tracked: rows::Tracked,
}

/// The raw limits measured in the same run: acked records/s of a tuned producer, rows/s of
/// one binary COPY.
struct Raw {
    producer: f64,
    copy: f64,
}

/// One run: what ingest accepted and what the consumer stored in the same window.
struct Window {
    measured: Measured,
    accepted_per_s: f64,
    rows_per_s: f64,
    drain: Duration,
}

impl Window {
    /// What the whole stack sustained: the smaller of the two rates.
    fn end_to_end(&self) -> f64 {
        self.accepted_per_s.min(self.rows_per_s)
    }
}

struct Bench {
    cli: Cli,
    stack: String,
    url: String,
    bootstrap: String,
    topic: String,
    group: String,
    pg: Arc<tokio_postgres::Client>,
    run: u64,
}

/// `values` joined with commas, as the command line takes them.
fn join<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A phase name for the sampler (they live as long as the process).
fn phase(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

impl Bench {
    async fn ends(&self) -> anyhow::Result<i64> {
        Ok(stack::end_offsets(&self.bootstrap, &self.topic)
            .await?
            .values()
            .sum())
    }

    async fn drain(&self) -> anyhow::Result<Duration> {
        let ends = self.ends().await?;
        rows::drain(
            &self.pg,
            &self.group,
            &self.topic,
            ends,
            self.cli.drain_timeout,
        )
        .await
    }

    /// Runs `load` while reading the stored records at the start and end of its window.
    async fn window(
        &mut self,
        batch: usize,
        pace: Pace,
        samples: Option<mpsc::UnboundedSender<load::Sample>>,
    ) -> anyhow::Result<Window> {
        self.run += 1;
        let load = Load {
            url: self.url.clone(),
            batch,
            pace,
            warmup: self.cli.warmup,
            duration: self.cli.duration,
            samples_per_s: self.cli.latency_samples_per_s,
            run: self.run,
        };
        let running = tokio::spawn(load::run(load, samples));
        tokio::time::sleep(self.cli.warmup).await;
        let (s0, t0) = (
            rows::stored(&self.pg, &self.group, &self.topic).await?,
            Instant::now(),
        );
        tokio::time::sleep(self.cli.duration).await;
        let (s1, t1) = (
            rows::stored(&self.pg, &self.group, &self.topic).await?,
            Instant::now(),
        );
        let measured = running.await.context("load task")??;
        let drain = self.drain().await?;
        Ok(Window {
            accepted_per_s: measured.accepted as f64 / self.cli.duration.as_secs_f64(),
            rows_per_s: (s1 - s0) as f64 / (t1 - t0).as_secs_f64(),
            measured,
            drain,
        })
    }

    /// The raw limits on the same servers: a tuned rdkafka producer into the topic, then one
    /// binary COPY into a scratch copy of `diag`.
    async fn raw_limits(
        &mut self,
        sampler: &Sampler,
        admin: &tokio_postgres::Client,
    ) -> anyhow::Result<Raw> {
        sampler.enter("raw producer");
        eprintln!("e2e-bench: raw producer for {:?}", self.cli.raw_duration);
        let producer = Settings::Tuned.producer(&self.bootstrap, "e2e-bench")?;
        let produced = produce_for(
            &producer,
            &self.topic,
            self.cli.raw_duration,
            10_000,
            6_000_000,
        )
        .await?;
        drop(producer);
        sampler.enter("between runs");
        self.drain().await?;

        sampler.enter("raw COPY");
        eprintln!("e2e-bench: raw COPY of {} rows", self.cli.copy_rows);
        let events = Events::new(self.run + 9, 1_000, self.cli.copy_rows, chrono::Utc::now());
        let positions: Vec<(i32, i64)> = (0..self.cli.copy_rows as i64).map(|i| (0, i)).collect();
        copy::create_scratch(admin).await?;
        let copied = copy::copy_rows(admin, &events, &positions).await;
        copy::drop_scratch(admin).await?;
        Ok(Raw {
            producer: produced.rate(),
            copy: self.cli.copy_rows as f64 / copied?.as_secs_f64(),
        })
    }

    /// The saturated run and the half-load run of `batch` events/request; only the second, at
    /// `offered` events/s, when that is given.
    async fn scenario(
        &mut self,
        sampler: &Sampler,
        batch: usize,
        offered: Option<f64>,
    ) -> anyhow::Result<Scenario> {
        let connections = self.cli.connections;
        let (saturated, offered) = match offered {
            Some(offered) => (None, offered),
            None => {
                sampler.enter(phase(format!("saturated, {batch}/request")));
                eprintln!(
                    "e2e-bench: {batch} event(s)/request, saturated, {connections} connections"
                );
                let saturated = self
                    .window(batch, Pace::Closed { connections }, None)
                    .await?;
                let offered = saturated.end_to_end() / 2.0;
                ensure!(
                    offered > 0.0,
                    "nothing was accepted and stored at saturation with {batch} event(s)/request: {:?}",
                    saturated.measured.statuses
                );
                (Some(saturated), offered)
            }
        };
        sampler.enter(phase(format!("half load, {batch}/request")));
        eprintln!("e2e-bench: {batch} event(s)/request, {offered:.0} events/s offered");
        let (tx, rx) = mpsc::unbounded_channel();
        let tracker = tokio::spawn(rows::track(
            self.pg.clone(),
            rx,
            self.cli.poll_every,
            Duration::from_secs(30),
        ));
        let pace = Pace::Open {
            events_per_s: offered,
            connections,
        };
        let half = self.window(batch, pace, Some(tx)).await?;
        let tracked = tracker.await.context("row tracker")??;
        sampler.enter("between runs");
        Ok(Scenario {
            batch,
            saturated,
            half,
            offered,
            tracked,
        })
    }
}

fn cpu_table(samples: &[stats::Sample], phases: &[&'static str]) {
    println!("| container | {} |", phases.join(" | "));
    println!("|---|{}", "---|".repeat(phases.len()));
    let tables: Vec<Vec<(String, Summary)>> =
        phases.iter().map(|p| stats::table(samples, p)).collect();
    let mut names: Vec<&String> = tables.iter().flatten().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    for name in names {
        let cells: Vec<String> = tables
            .iter()
            .map(|t| match t.iter().find(|(n, _)| n == name) {
                Some((_, s)) if s.n > 0 => format!("{:.0} % / {:.0} %", s.cpu_mean, s.cpu_max),
                _ => "–".to_owned(),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.connections > 0 && !cli.batch_sizes.is_empty() && !cli.batch_sizes.contains(&0),
        "--connections and every --batch-sizes entry must be at least 1"
    );
    ensure!(
        cli.offered.is_empty()
            || (cli.offered.len() == cli.batch_sizes.len()
                && cli.offered.iter().all(|r| r.is_finite() && *r > 0.0)),
        "--offered needs one rate above 0 per --batch-sizes entry ({} given for {})",
        cli.offered.len(),
        cli.batch_sizes.len()
    );
    let ctx = Ctx::load(&cli.config, ProgressMode::Plain)?;
    let config = &ctx.config;
    if !config.ingest.tokens_file.is_empty() {
        bail!(
            "ingest.tokens_file is set in {}: e2e-bench posts without tokens; run it on a stack without them",
            cli.config.display()
        );
    }
    // Vehicles would add rows the benchmark did not send (and load of their own).
    let (running, _) = launch_fleet::fleet_totals(&ctx).await.unwrap_or_default();
    if running.generated > 0 {
        bail!(
            "stack {} runs vehicles ({}): remove them first (`fleet teardown --fleet-only`)",
            ctx.stack(),
            launch_fleet::describe(&running)
        );
    }
    let host = fleet_orchestrator::engine::connect_host(&config.stack.bind_address);
    let stack_name = ctx.stack().to_owned();
    let pg_addr = SocketAddr::new(host, config.postgres.host_port);
    let password = fleet_orchestrator::state::postgres_password(&ctx.paths.state)?;
    let pg = fleet_orchestrator::probes::postgres_connect(
        pg_addr,
        &config.postgres.user,
        &password,
        &config.postgres.database,
    )
    .await
    .with_context(|| format!("connecting to PostgreSQL of stack {stack_name}"))?;
    let admin_password = fleet_orchestrator::state::postgres_admin_password(&ctx.paths.state)?;
    let admin = fleet_orchestrator::probes::postgres_connect(
        pg_addr,
        fleet_common::roles::ADMIN_ROLE,
        &admin_password,
        &config.postgres.database,
    )
    .await
    .with_context(|| {
        format!("connecting to PostgreSQL of stack {stack_name} as the schema's owner")
    })?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
    let load_before = load_average();
    let mut bench = Bench {
        url: format!(
            "http://{}/events",
            SocketAddr::new(host, config.ingest.host_port)
        ),
        bootstrap: SocketAddr::new(host, config.broker.host_port).to_string(),
        topic: config.broker.topic.clone(),
        group: config.consumer.group.clone(),
        pg: Arc::new(pg),
        stack: stack_name,
        run: chrono::Utc::now().timestamp() as u64 % 1_000 * 10,
        cli,
    };
    eprintln!(
        "e2e-bench: stack {} ({}), Kafka {} topic {}; waiting for the consumer to be caught up",
        bench.stack, bench.url, bench.bootstrap, bench.topic
    );
    let sampler = Sampler::start(
        stats::stack_engines(&ctx).await?,
        bench.stack.clone(),
        bench.cli.sample_every,
        "idle",
    );
    bench.drain().await?;
    let rows_before = stack::diag_rows(&bench.pg).await?;
    let records_before = bench.ends().await?;

    let mut scenarios = Vec::new();
    for (i, batch) in bench.cli.batch_sizes.clone().into_iter().enumerate() {
        let offered = bench.cli.offered.get(i).copied();
        scenarios.push(bench.scenario(&sampler, batch, offered).await?);
    }
    let raw = if bench.cli.offered.is_empty() {
        Some(bench.raw_limits(&sampler, &admin).await?)
    } else {
        None
    };
    let samples = sampler.stop();

    bench.drain().await?;
    let rows_added = stack::diag_rows(&bench.pg).await? - rows_before;
    let records_added = bench.ends().await? - records_before;
    let load_after = load_average();
    let cli = &bench.cli;

    println!("## e2e-bench, {date}");
    println!();
    println!("```sh");
    let offered = if cli.offered.is_empty() {
        String::new()
    } else {
        format!(" --offered {}", join(&cli.offered))
    };
    println!(
        "cargo run --release -p ingest-bench --bin e2e-bench -- --config {} --batch-sizes {} --connections {} --duration {} --warmup {}{offered}",
        cli.config.display(),
        join(&cli.batch_sizes),
        cli.connections,
        humantime::format_duration(cli.duration),
        humantime::format_duration(cli.warmup)
    );
    println!("```");
    println!();
    println!(
        "stack `{}`; load average before {load_before}, after {load_after}; every record added to the topic is a row: {} ({records_added} records, {rows_added} rows)",
        bench.stack,
        if rows_added == records_added {
            "yes"
        } else {
            "NO"
        }
    );
    println!();
    println!(
        "| events/request | saturated: accepted events/s | rows/s stored (same window) | end to end | HTTP answer p50 / p99 | half load: offered events/s | accepted / rows per s | POST→row p50 / p99 / max (samples) | drain after saturation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in &scenarios {
        let t = &s.tracked;
        let saturated = match &s.saturated {
            Some(w) => format!(
                "{:.0} | {:.0} | **{:.0}** | {} / {}",
                w.accepted_per_s,
                w.rows_per_s,
                w.end_to_end(),
                ms(quantile(&w.measured.latencies, 0.5)),
                ms(quantile(&w.measured.latencies, 0.99)),
            ),
            None => "– | – | – | –".to_owned(),
        };
        let drain = s.saturated.as_ref().map_or("–".to_owned(), |w| {
            format!("{:.1} s", w.drain.as_secs_f64())
        });
        println!(
            "| {} | {saturated} | {:.0} | {:.0} / {:.0} | **{} / {}** / {} ({}, {} missing, {} late starts) | {drain} |",
            s.batch,
            s.offered,
            s.half.accepted_per_s,
            s.half.rows_per_s,
            ms(quantile(&t.latencies, 0.5)),
            ms(quantile(&t.latencies, 0.99)),
            ms(quantile(&t.latencies, 1.0)),
            t.latencies.len(),
            t.missing,
            s.half.measured.late_starts,
        );
    }
    println!();
    if let Some(raw) = &raw {
        println!(
            "Same run, same servers: raw producer ({}) {:.0} acked records/s; one binary COPY of {} rows into a scratch copy of `diag` {:.0} rows/s.",
            Settings::Tuned.describe(),
            raw.producer,
            cli.copy_rows,
            raw.copy
        );
        println!();
        println!("| events/request | end to end / raw producer | rows/s / COPY |");
        println!("|---|---|---|");
        for s in &scenarios {
            if let Some(w) = &s.saturated {
                println!(
                    "| {} | {:.2} | {:.2} |",
                    s.batch,
                    w.end_to_end() / raw.producer,
                    w.rows_per_s / raw.copy
                );
            }
        }
        println!();
    }
    for s in &scenarios {
        let saturated = s.saturated.as_ref().map_or("not run".to_owned(), |w| {
            format!("{:?}", w.measured.statuses)
        });
        println!(
            "Statuses, {}/request: saturated {saturated}; half load {:?}",
            s.batch, s.half.measured.statuses
        );
    }
    println!();
    println!(
        "CPU per container (% of one core, mean / max of the engines' container statistics every {}):",
        humantime::format_duration(cli.sample_every)
    );
    println!();
    let mut phases: Vec<&'static str> = Vec::new();
    for s in &scenarios {
        if s.saturated.is_some() {
            phases.push(phase(format!("saturated, {}/request", s.batch)));
        }
        phases.push(phase(format!("half load, {}/request", s.batch)));
    }
    if raw.is_some() {
        phases.extend(["raw producer", "raw COPY"]);
    }
    cpu_table(&samples, &phases);
    ensure!(
        rows_added == records_added,
        "{records_added} records were added to the topic but {rows_added} rows to diag"
    );
    Ok(())
}
