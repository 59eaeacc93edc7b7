//! `broker-bench`: the produce rate into the stack's broker from the host, for each broker
//! storage, in one run. For every storage named by `--storages` it launches a stack of its own
//! (`fleet launch-infra` with `broker.storage` set, own name and ports), then with the consumer
//! stopped measures
//! 1. a tuned librdkafka producer alone (settings printed with the results);
//! 2. a producer with ingest's own settings alone: the realistic raw baseline for `ingest-bench`;
//!
//! then starts the consumer on the backlog and measures
//! 3. the tuned producer while the consumer drains (and the rows/s the consumer stored meanwhile);
//!
//! and tears the stack down. It prints one Markdown table with the machine's load average at
//! the start and the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use ingest_bench::load_average;
use ingest_bench::produce::{ProduceRun, Settings, produce_for};
use tokio::process::Command;

/// Produce rate into the broker of a stack per storage engine.
#[derive(Debug, Parser)]
#[command(name = "broker-bench", version, about)]
struct Cli {
    /// fleet's config file.
    #[arg(long, default_value = "config.master.toml")]
    config: PathBuf,

    /// The `fleet` binary (default: next to this one).
    #[arg(long)]
    fleet: Option<PathBuf>,

    /// Storage engines to measure, comma-separated (`postgres`, `sqlite`).
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    storages: Vec<String>,

    /// Measured time of each run.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Records in flight at most.
    #[arg(long, default_value_t = 50_000)]
    in_flight: usize,

    /// Topic to produce to (the consumer's input topic, so that it drains it in run 3).
    #[arg(long, default_value = "telemetry")]
    topic: String,
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One stack of this run: its name and `FLEET_*` overrides.
struct Stack {
    name: String,
    env: BTreeMap<String, String>,
    broker_port: u16,
    pg_port: u16,
    state_dir: PathBuf,
}

impl Stack {
    fn new(storage: &str) -> anyhow::Result<Self> {
        let name = format!("bbench-{storage}-{}", std::process::id());
        let state_dir = std::env::temp_dir().join(format!("fleet-{name}-state"));
        let broker_port = free_port()?;
        let pg_port = free_port()?;
        let env = BTreeMap::from([
            ("FLEET_STACK__NAME".to_owned(), name.clone()),
            (
                "FLEET_STACK__STATE_DIR".to_owned(),
                state_dir.display().to_string(),
            ),
            ("FLEET_BROKER__STORAGE".to_owned(), storage.to_owned()),
            (
                "FLEET_BROKER__HOST_PORT".to_owned(),
                broker_port.to_string(),
            ),
            (
                "FLEET_ZOOKEEPER__HOST_PORT".to_owned(),
                free_port()?.to_string(),
            ),
            ("FLEET_POSTGRES__HOST_PORT".to_owned(), pg_port.to_string()),
            (
                "FLEET_INGEST__HOST_PORT".to_owned(),
                free_port()?.to_string(),
            ),
        ]);
        Ok(Self {
            name,
            env,
            broker_port,
            pg_port,
            state_dir,
        })
    }

    async fn fleet(&self, cli: &Cli, binary: &PathBuf, args: &[&str]) -> anyhow::Result<()> {
        eprintln!("broker-bench: fleet {} ({})", args.join(" "), self.name);
        let status = Command::new(binary)
            .args(["--progress", "plain", "--config"])
            .arg(&cli.config)
            .args(args)
            .envs(&self.env)
            .stdout(Stdio::null())
            .status()
            .await
            .context("running fleet")?;
        if !status.success() {
            bail!("fleet {} failed ({status})", args.join(" "));
        }
        Ok(())
    }

    async fn docker(&self, action: &str, service: &str) -> anyhow::Result<()> {
        let containers = ingest_bench::stack::service_containers(&self.name, service).await?;
        ingest_bench::stack::docker(action, &containers).await
    }

    async fn rows(&self) -> anyhow::Result<i64> {
        let password = std::fs::read_to_string(
            self.state_dir
                .join(&self.name)
                .join(fleet_orchestrator::state::PASSWORD_FILE),
        )
        .context("the stack's password file")?;
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.pg_port)
            .user("fleet")
            .password(password.trim_end())
            .dbname("av_telemetry")
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client
            .query_one("SELECT count(*) FROM diag", &[])
            .await?
            .get(0))
    }
}

/// One row of the results.
struct Row {
    storage: String,
    run: &'static str,
    settings: Settings,
    result: ProduceRun,
    consumer_rows_per_s: Option<f64>,
}

async fn measure(
    cli: &Cli,
    binary: &PathBuf,
    storage: &str,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let stack = Stack::new(storage)?;
    let outcome = async {
        stack.fleet(cli, binary, &["launch-infra"]).await?;
        let bootstrap = format!("127.0.0.1:{}", stack.broker_port);
        stack.docker("stop", "consumer").await?;
        for (run, settings, serial) in [
            ("alone", Settings::Tuned, 1_000_000),
            ("alone", Settings::Ingest, 2_000_000),
        ] {
            let producer = settings.producer(&bootstrap, "broker-bench")?;
            let result = produce_for(&producer, &cli.topic, cli.duration, cli.in_flight, serial).await?;
            eprintln!("broker-bench: {storage} {run} {settings:?}: {:.0} records/s", result.rate());
            rows.push(Row {
                storage: storage.to_owned(),
                run,
                settings,
                result,
                consumer_rows_per_s: None,
            });
        }
        stack.docker("start", "consumer").await?;
        let before = stack.rows().await?;
        let producer = Settings::Tuned.producer(&bootstrap, "broker-bench")?;
        let result = produce_for(&producer, &cli.topic, cli.duration, cli.in_flight, 3_000_000).await?;
        let stored = stack.rows().await? - before;
        let consumer = stored as f64 / result.elapsed.as_secs_f64();
        eprintln!(
            "broker-bench: {storage} while draining: {:.0} records/s, consumer {consumer:.0} rows/s",
            result.rate()
        );
        rows.push(Row {
            storage: storage.to_owned(),
            run: "while the consumer drains",
            settings: Settings::Tuned,
            result,
            consumer_rows_per_s: Some(consumer),
        });
        anyhow::Ok(())
    }
    .await;
    let teardown = stack.fleet(cli, binary, &["teardown"]).await;
    let _ = std::fs::remove_dir_all(&stack.state_dir);
    outcome.and(teardown)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let binary = match &cli.fleet {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .join("fleet"),
    };
    let load_before = load_average();
    let mut rows = Vec::new();
    for storage in &cli.storages {
        measure(&cli, &binary, storage, &mut rows)
            .await
            .with_context(|| format!("storage {storage}"))?;
    }
    let load_after = load_average();
    println!(
        "broker-bench: {} per run, at most {} records in flight, ~340-byte telemetry events keyed by VIN over 1,000 vehicles, to `{}`; load average {load_before} at the start, {load_after} at the end\n",
        humantime::format_duration(cli.duration),
        cli.in_flight,
        cli.topic
    );
    println!(
        "| storage | run | producer | records/s | p50 ack | p99 ack | failed | consumer rows/s meanwhile |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:?} | {:.0} | {:.0} ms | {:.0} ms | {} | {} |",
            row.storage,
            row.run,
            row.settings,
            row.result.rate(),
            row.result.latency(0.5).as_secs_f64() * 1e3,
            row.result.latency(0.99).as_secs_f64() * 1e3,
            row.result.failed,
            row.consumer_rows_per_s
                .map(|r| format!("{r:.0}"))
                .unwrap_or_else(|| "(stopped)".into()),
        );
    }
    println!();
    for settings in [Settings::Tuned, Settings::Ingest] {
        println!("- {settings:?}: {}", settings.describe());
    }
    Ok(())
}
