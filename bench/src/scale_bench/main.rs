//! `scale-bench`: the documented fleet-at-scale run as one command, against a running stack
//! (`fleet launch-infra`, with the same `FLEET_*` overrides in the environment):
//!
//! 1. `fleet launch-fleet --num-vehicles N --per-container K --duration D`, which returns once
//!    every vehicle reported for D and every event has its fate (the vehicles keep their books);
//! 2. waits until `diag` grew by as many rows as the vehicles' books count acknowledged events
//!    (the consumer's drain), timing it;
//! 3. `fleet verify --timeout T`: every acknowledged event stored, no seq gap per VIN, probes;
//!
//! while the engines' statistics of every container of the stack are sampled every few seconds
//! (on every node of a swarm, with a sum per node). Prints a
//! Markdown results block: the books, rows stored, drain time, CPU and memory per container
//! (mean and max) during the run and the drain, the verify output. Exit status 1 when the rows
//! did not all arrive or verify failed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use fleet_orchestrator::commands::{Ctx, launch_fleet};
use fleet_orchestrator::output::ProgressMode;
use tokio::process::Command;

use ingest_bench::load_average;
use ingest_bench::stats::{self as samples, Sampler, Summary};

/// The 10,000-vehicle proof as one command against a running stack.
#[derive(Debug, Parser)]
#[command(name = "scale-bench", version, about)]
struct Cli {
    /// fleet's config file (the stack's names and ports, `FLEET_*` overrides apply).
    #[arg(long, default_value = "config.master.toml")]
    config: PathBuf,
    /// The fleet binary (default: `fleet` next to this one).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Vehicles to run.
    #[arg(long, default_value_t = 10_000)]
    num_vehicles: u32,
    /// Vehicles per container (default: vehicles.per_container).
    #[arg(long)]
    per_container: Option<u32>,
    /// How long the vehicles report.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time between two samples of the containers' statistics.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    sample_every: Duration,
    /// Longest wait for the consumer to store every acknowledged event.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Probe events `fleet verify` sends.
    #[arg(long, default_value_t = 20)]
    probes: u32,
    /// `fleet verify --timeout`.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    verify_timeout: Duration,
}

/// Runs `fleet <args>` with the environment of this process; stdout and whether it succeeded
/// (progress goes to stderr as it happens).
async fn fleet(cli: &Cli, binary: &PathBuf, args: &[String]) -> anyhow::Result<(String, bool)> {
    eprintln!("scale-bench: fleet {}", args.join(" "));
    let out = Command::new(binary)
        .args(["--progress", "plain", "--config"])
        .arg(&cli.config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("run {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprint!("{stdout}");
    Ok((stdout, out.status.success()))
}

/// Rows in `diag`.
async fn diag_rows(pg: &tokio_postgres::Client) -> anyhow::Result<i64> {
    Ok(pg
        .query_one("SELECT count(*) FROM diag", &[])
        .await
        .context("count diag")?
        .get(0))
}

/// Polls `diag` until it holds `target` rows; the time it took, or `None` after `timeout`.
async fn wait_rows(
    pg: &tokio_postgres::Client,
    target: i64,
    timeout: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let mut last_note = Instant::now();
    loop {
        let rows = diag_rows(pg).await?;
        if rows >= target {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > timeout {
            return Ok(None);
        }
        if last_note.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "scale-bench: diag {rows} of {target} rows after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn cell(s: Option<&Summary>) -> String {
    match s {
        Some(s) if s.n > 0 => format!(
            "{:.1} % / {:.1} % | {:.0} MiB",
            s.cpu_mean, s.cpu_max, s.mem_max
        ),
        _ => "– | –".to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    fleet_common::logging::init(0);
    let binary = match &cli.fleet {
        Some(f) => f.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .join("fleet"),
    };
    let ctx = Ctx::load(&cli.config, ProgressMode::Plain)?;
    let stack = ctx.stack().to_owned();
    let host = ctx.host();
    let password = fleet_orchestrator::state::postgres_password(&ctx.paths.state)?;
    let pg = fleet_orchestrator::probes::postgres_connect(
        SocketAddr::new(host, ctx.config.postgres.host_port),
        &ctx.config.postgres.user,
        &password,
        &ctx.config.postgres.database,
    )
    .await
    .with_context(|| format!("connect to PostgreSQL of stack {stack}"))?;

    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
    let load_before = load_average();
    let rows_before = diag_rows(&pg).await?;
    let (before, _) = launch_fleet::fleet_totals(&ctx).await.unwrap_or_default();
    if before.generated > 0 {
        bail!(
            "stack {stack} already runs vehicles ({}): remove them first (`fleet teardown --fleet-only`)",
            launch_fleet::describe(&before)
        );
    }

    let duration = humantime::format_duration(cli.duration).to_string();
    let mut launch = vec![
        "launch-fleet".to_owned(),
        "--num-vehicles".to_owned(),
        cli.num_vehicles.to_string(),
        "--duration".to_owned(),
        duration.clone(),
    ];
    if let Some(k) = cli.per_container {
        launch.extend(["--per-container".to_owned(), k.to_string()]);
    }
    let verify = vec![
        "verify".to_owned(),
        "--probes".to_owned(),
        cli.probes.to_string(),
        "--timeout".to_owned(),
        humantime::format_duration(cli.verify_timeout).to_string(),
    ];

    // Samples before the first event (cargo's check, image, containers starting) are left out.
    let sampler = Sampler::start(
        samples::stack_engines(&ctx).await?,
        stack.clone(),
        cli.sample_every,
        "launch",
    );
    let started = Instant::now();
    let launching = fleet(&cli, &binary, &launch);
    tokio::pin!(launching);
    let mut first_event: Option<Duration> = None;
    // The books while the vehicles run: (seconds since the first event, totals).
    let mut books: Vec<(f64, launch_fleet::Totals)> = Vec::new();
    let (launch_out, launched) = loop {
        let pause = if first_event.is_some() {
            cli.sample_every
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            out = &mut launching => break out?,
            () = tokio::time::sleep(pause) => {
                if let Ok((t, _)) = launch_fleet::fleet_totals(&ctx).await
                    && t.generated > 0
                {
                    let first = *first_event.get_or_insert_with(|| {
                        sampler.enter("run");
                        started.elapsed()
                    });
                    books.push(((started.elapsed() - first).as_secs_f64(), t));
                }
            }
        }
    };
    let launch_secs = started.elapsed().as_secs_f64();
    if !launched {
        sampler.stop();
        bail!("fleet launch-fleet failed:\n{launch_out}");
    }
    sampler.enter("drain");
    let (totals, done) = launch_fleet::fleet_totals(&ctx).await?;
    let rows_at_done = diag_rows(&pg).await? - rows_before;
    let target = rows_before + i64::try_from(totals.acknowledged)?;
    eprintln!(
        "scale-bench: vehicles done ({}); waiting for diag to hold {} more rows",
        launch_fleet::describe(&totals),
        i64::try_from(totals.acknowledged)? - rows_at_done
    );
    let drained = wait_rows(&pg, target, cli.drain_timeout).await?;
    let samples = sampler.stop();
    let stored = diag_rows(&pg).await? - rows_before;
    let (verify_out, verified) = fleet(&cli, &binary, &verify).await?;
    let load_after = load_average();

    let backlog = i64::try_from(totals.acknowledged)? - rows_at_done;
    println!("## scale-bench, {date}");
    println!();
    println!("```sh");
    println!("fleet {}", launch.join(" "));
    println!("# then: until diag holds every acknowledged event (SELECT count(*) FROM diag)");
    println!("fleet {}", verify.join(" "));
    println!("```");
    println!();
    println!("stack `{stack}`; load average before {load_before}, after {load_after}");
    println!();
    println!("| | |");
    println!("|---|---|");
    println!(
        "| vehicles | {} for {duration}, books final: {} |",
        cli.num_vehicles,
        if done { "yes" } else { "NO" }
    );
    println!("| books | {} |", launch_fleet::describe(&totals));
    let first = first_event.map_or(f64::NAN, |d| d.as_secs_f64());
    println!(
        "| `launch-fleet` returned after | {launch_secs:.1} s: first event seen after {first:.1} s \
         (cargo's up-to-date check, runtime image, containers), then {:.1} s of reports and \
         delivery (the \"run\" columns below) |",
        launch_secs - first
    );
    if let (Some((t0, first)), Some((t1, last))) = (books.first(), books.last())
        && t1 > t0
    {
        let max_pending = books.iter().map(|(_, t)| t.pending).max().unwrap_or(0);
        println!(
            "| acknowledged while running | {:.0} events/s (books read every {}: {} -> {} in {:.0} s); most events pending in the vehicles {max_pending} |",
            (last.acknowledged - first.acknowledged) as f64 / (t1 - t0),
            humantime::format_duration(cli.sample_every),
            first.acknowledged,
            last.acknowledged,
            t1 - t0
        );
    }
    println!(
        "| rows added to diag | {stored} ({rows_at_done} when the vehicles were done, backlog {backlog}) |"
    );
    match drained {
        Some(d) => println!(
            "| drain: backlog stored in | {:.1} s ({:.0} rows/s) |",
            d.as_secs_f64(),
            backlog as f64 / d.as_secs_f64().max(0.001)
        ),
        None => println!(
            "| drain | NOT complete after {} |",
            humantime::format_duration(cli.drain_timeout)
        ),
    }
    println!(
        "| `fleet verify` | {} |",
        if verified { "passed" } else { "FAILED" }
    );
    println!();
    println!("```");
    print!("{verify_out}");
    println!("```");
    println!();
    println!(
        "CPU (% of one core) and memory from the engines' container statistics (as `docker stats`), every {}:",
        humantime::format_duration(cli.sample_every)
    );
    println!();
    println!(
        "| container | run: CPU mean / max | run: mem max | drain: CPU mean / max | drain: mem max |"
    );
    println!("|---|---|---|---|---|");
    let run = samples::table(&samples, "run");
    let drain = samples::table(&samples, "drain");
    let mut seen = std::collections::HashSet::new();
    let names = run.iter().chain(&drain).map(|(n, _)| n);
    for name in names.filter(|n| seen.insert(*n)) {
        let find = |rows: &[(String, Summary)]| rows.iter().find(|(n, _)| n == name).map(|r| r.1);
        println!(
            "| {name} | {} | {} |",
            cell(find(&run).as_ref()),
            cell(find(&drain).as_ref())
        );
    }
    if drained.is_none() || !verified || stored < i64::try_from(totals.acknowledged)? {
        bail!("not every acknowledged event was stored, or fleet verify failed");
    }
    Ok(())
}
