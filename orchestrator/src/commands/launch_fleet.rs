//! `fleet launch-fleet --num-vehicles N`: converges the vehicle containers to exactly the ones
//! N vehicles need (K per container), removes the rest, and waits until every vehicle's first
//! events are acknowledged by ingest. With `--duration D` the vehicles report for D only; the
//! command then waits until every container has delivered its last event and prints the
//! totals, while the containers keep serving `GET /stats` for `fleet verify`.
//!
//! [`read_books`] is the one reader of the vehicle containers' `GET /stats`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fleet_common::wire::{Phase, StatsQuery, StatsReport};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::Ctx;
use crate::docker::{ContainerInfo, Docker};
use crate::engine;
use crate::plan::{self, Service, VEHICLE_PORT, VEHICLE_SERVICE};

/// Containers converged or read at once.
const PARALLEL: usize = 8;
/// How often the containers' books are read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// How the vehicles of a launch run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// Post the old client's form-encoded events.
    pub legacy_form: bool,
    /// Report only this long, then deliver and keep the books (`None`: until stopped).
    pub duration: Option<Duration>,
}

/// Sums of a container's (or a fleet's) counters, as in the vehicle's `GET /stats`.
pub use fleet_common::Totals;

/// Runs the command with vehicles posting the current JSON format until stopped.
pub async fn run(ctx: &Ctx, num_vehicles: u32, per_container: Option<u32>) -> anyhow::Result<()> {
    run_with(ctx, num_vehicles, per_container, FleetOptions::default()).await
}

/// Runs the command with `options`. SIGINT or SIGTERM stops it (exit 130 or 143); the vehicle
/// containers converged so far stay, as a later run converges them anyway.
pub async fn run_with(
    ctx: &Ctx,
    num_vehicles: u32,
    per_container: Option<u32>,
    options: FleetOptions,
) -> anyhow::Result<()> {
    let mut signals =
        engine::interrupt::Signals::listen().context("listen for SIGINT and SIGTERM")?;
    tokio::select! {
        done = launch(ctx, num_vehicles, per_container, options) => done,
        signal = signals.recv() => Err(engine::Interrupted(signal).into()),
    }
}

async fn launch(
    ctx: &Ctx,
    num_vehicles: u32,
    per_container: Option<u32>,
    options: FleetOptions,
) -> anyhow::Result<()> {
    let per_container = per_container.unwrap_or(ctx.config.vehicles.per_container);
    if per_container == 0 {
        bail!("--per-container must be at least 1");
    }
    if let Some(duration) = options.duration {
        check_duration(duration, ctx.config.vehicles.report_interval)?;
    }
    if ctx.swarm().is_some() {
        return super::on_swarm::launch_fleet(ctx, num_vehicles, per_container, options).await;
    }
    let docker = ctx.docker().await?;
    let stack = ctx.stack();
    // One container `ingest`, or replicas `ingest-<i>`: any of them running will do.
    let ingest = docker
        .list_stack_containers(stack, Some(Service::Ingest.name()))
        .await?;
    if !ingest.iter().any(|c| c.is_running()) {
        bail!("ingest of stack {stack} is not running: run `fleet launch-infra` first");
    }
    let base =
        crate::images::ensure_base(&docker, &ctx.config, &ctx.paths.cache, &ctx.progress).await?;
    let runtime =
        crate::images::runtime_image(&docker, &ctx.config, &ctx.paths, &ctx.progress, &base)
            .await
            .context("prepare the runtime image")?;
    let mut specs = plan::fleet_plan(
        &ctx.config,
        &runtime,
        num_vehicles,
        per_container,
        options.legacy_form,
        options.duration,
    );
    // The vehicles register in the protected registry as the stack's identity.
    let credentials = super::config::credentials(ctx)?.with_context(|| {
        format!(
            "stack {stack} has no registry identity ({}) yet: run `fleet launch-infra` first",
            ctx.paths
                .state
                .join(crate::state::ZOOKEEPER_PASSWORD_FILE)
                .display()
        )
    })?;
    for spec in &mut specs {
        if let Some(volume) = plan::protect_member(spec, &credentials.to_bytes()) {
            docker
                .ensure_volume(&volume, stack, VEHICLE_SERVICE)
                .await?;
        }
    }

    let existing = docker
        .list_stack_containers(stack, Some(VEHICLE_SERVICE))
        .await?;
    let surplus: Vec<&ContainerInfo> = existing
        .iter()
        .filter(|c| !specs.iter().any(|s| s.name == c.name))
        .collect();
    if !surplus.is_empty() {
        let step = ctx
            .progress
            .step(format!("remove {} vehicle container(s)", surplus.len()));
        stream::iter(surplus.iter().map(|c| docker.remove_container(&c.name)))
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        step.finish("removed");
    }

    let step = ctx.progress.step(format!(
        "vehicles   {num_vehicles} in {} container(s)",
        specs.len()
    ));
    // A replaced vehicle container is not brought back: the new fleet size is what was asked.
    let journal = engine::Journal::new(stack);
    let applied: Vec<_> = stream::iter(
        specs
            .iter()
            .map(|spec| engine::converge(&docker, spec, &journal)),
    )
    .buffer_unordered(PARALLEL)
    .try_collect()
    .await?;
    journal.commit(&docker).await?;
    let created = applied.iter().filter(|a| a.action.created_it()).count();
    step.update(&format!(
        "{created} created; waiting for first acknowledged events"
    ));
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    match wait_acknowledged(ctx, &docker, &names).await {
        Ok(()) => step.finish(&format!("{created} created, all acknowledged")),
        Err(e) => {
            step.fail(&e.to_string());
            return Err(e);
        }
    }
    let Some(duration) = options.duration else {
        println!(
            "fleet of {num_vehicles} vehicle(s) running in {} container(s)",
            specs.len()
        );
        println!("events: {}", ctx.events_url());
        return Ok(());
    };

    let totals = delivered(ctx, duration, wait_done(ctx, &docker, &names)).await?;
    println!(
        "fleet of {num_vehicles} vehicle(s) in {} container(s) reported for {}: {}",
        specs.len(),
        humantime::format_duration(duration),
        describe(&totals)
    );
    println!("the vehicles keep their books (GET /stats) until `fleet teardown --fleet-only`");
    println!("events: {}", ctx.events_url());
    Ok(())
}

/// Waits with a progress step for `done`, the vehicles' totals once every container of a run of
/// `duration` has delivered its last event.
pub async fn delivered(
    ctx: &Ctx,
    duration: Duration,
    done: impl Future<Output = anyhow::Result<Totals>>,
) -> anyhow::Result<Totals> {
    let step = ctx.progress.step(format!(
        "vehicles   report for {}, then deliver",
        humantime::format_duration(duration)
    ));
    match done.await {
        Ok(totals) => {
            step.finish("every event delivered");
            Ok(totals)
        }
        Err(e) => {
            step.fail(&e.to_string());
            Err(e)
        }
    }
}

/// A run must be long enough for every vehicle to report at least once (the first report of a
/// vehicle falls somewhere in the first interval).
fn check_duration(duration: Duration, report_interval: Duration) -> anyhow::Result<()> {
    if duration < report_interval {
        bail!(
            "--duration {} is shorter than vehicles.report_interval ({}): some vehicles would \
             never report",
            humantime::format_duration(duration),
            humantime::format_duration(report_interval)
        );
    }
    Ok(())
}

/// The totals as one line.
pub fn describe(t: &Totals) -> String {
    format!(
        "generated {}, acknowledged {}, retried {}, rejected {}, dropped {}, pending {}",
        t.generated, t.acknowledged, t.retried, t.rejected, t.dropped, t.pending
    )
}

/// The books of the named vehicle containers, read in parallel: each name with its books, or
/// why they could not be read (gone, not running, no published port, no answer).
pub async fn read_books(
    ctx: &Ctx,
    docker: &Docker,
    names: &[String],
    detail: StatsQuery,
) -> Vec<(String, anyhow::Result<StatsReport>)> {
    let host = ctx.host();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            let why = format!("HTTP client: {e}");
            return names
                .iter()
                .map(|n| (n.clone(), Err(anyhow::anyhow!(why.clone()))))
                .collect();
        }
    };
    let read = |name: String| {
        let client = client.clone();
        async move {
            let books = async {
                let info = docker
                    .find_container(&name, ctx.stack())
                    .await?
                    .context("container is gone")?;
                if !info.is_running() {
                    bail!("container is {}", info.state);
                }
                let port = info
                    .ports
                    .get(&VEHICLE_PORT)
                    .context("stats port not published")?;
                fetch_books(&client, SocketAddr::new(host, *port), detail).await
            }
            .await;
            (name, books)
        }
    };
    stream::iter(names.iter().cloned().map(read))
        .buffered(PARALLEL)
        .collect()
        .await
}

/// `GET /stats` of the vehicle container (or task) whose stats port is at `addr`, with every
/// vehicle or the totals only (`detail`).
pub async fn fetch_books(
    client: &reqwest::Client,
    addr: SocketAddr,
    detail: StatsQuery,
) -> anyhow::Result<StatsReport> {
    let url = format!("http://{addr}{}", detail.path());
    client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("read GET {url}"))
}

/// The names of the stack's running vehicle containers.
pub async fn running_vehicle_containers(ctx: &Ctx, docker: &Docker) -> anyhow::Result<Vec<String>> {
    Ok(docker
        .list_stack_containers(ctx.stack(), Some(VEHICLE_SERVICE))
        .await?
        .into_iter()
        .filter(|c| c.is_running())
        .map(|c| c.name)
        .collect())
}

/// The sums over the books of every running vehicle container of the stack, and whether every
/// one of them is [`Phase::Done`].
pub async fn fleet_totals(ctx: &Ctx) -> anyhow::Result<(Totals, bool)> {
    let all = all_books(ctx, StatsQuery::TOTALS_ONLY).await?;
    let mut totals = Totals::default();
    let mut done = !all.is_empty();
    for (name, books) in all {
        let books = books.with_context(|| format!("stats of {name}"))?;
        totals.add(&books.totals);
        done &= books.phase == Phase::Done;
    }
    Ok((totals, done))
}

/// The books of every running vehicle container (every running vehicle task on a swarm), with
/// every vehicle or the totals only (`detail`).
pub async fn all_books(
    ctx: &Ctx,
    detail: StatsQuery,
) -> anyhow::Result<Vec<(String, anyhow::Result<StatsReport>)>> {
    if ctx.swarm().is_some() {
        let cluster = super::on_swarm::cluster(ctx, false).await?;
        return super::swarm_view::vehicle_books(&cluster, ctx.stack(), detail).await;
    }
    let docker = ctx.docker().await?;
    let names = running_vehicle_containers(ctx, &docker).await?;
    Ok(read_books(ctx, &docker, &names, detail).await)
}

/// Waits until every vehicle of every container has at least one acknowledged event.
async fn wait_acknowledged(ctx: &Ctx, docker: &Docker, names: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pending: Vec<String> = names.to_vec();
    let mut last_error = String::new();
    loop {
        let mut still = Vec::new();
        for (name, books) in read_books(ctx, docker, &pending, StatsQuery::EVERY_VEHICLE).await {
            match books {
                Ok(b)
                    if !b.vehicles.is_empty()
                        && b.vehicles.iter().all(|v| v.books.acknowledged > 0) => {}
                Ok(_) => still.push(name),
                Err(e) => {
                    last_error = format!("{name}: {e:#}");
                    still.push(name);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() > ctx.config.vehicles.start_timeout {
            let logs = docker
                .logs_tail(&pending[0], engine::LOG_LINES_ON_FAILURE)
                .await
                .unwrap_or_default();
            bail!(
                "{} vehicle container(s) had no acknowledged event after {:?} (first: {}; {last_error})\n--- last log lines of {} ---\n{logs}",
                pending.len(),
                ctx.config.vehicles.start_timeout,
                pending[0],
                pending[0]
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every container is [`Phase::Done`]; returns the fleet's totals. Fails when a
/// container cannot be read, or when delivery makes no progress for `vehicles.start_timeout`
/// once the vehicles stopped reporting.
async fn wait_done(ctx: &Ctx, docker: &Docker, names: &[String]) -> anyhow::Result<Totals> {
    let stall_limit = ctx.config.vehicles.start_timeout;
    let mut progress = (0, Instant::now());
    loop {
        let mut totals = Totals::default();
        let mut generating = false;
        let mut done = true;
        for (name, books) in read_books(ctx, docker, names, StatsQuery::TOTALS_ONLY).await {
            let books = books.with_context(|| format!("stats of {name}"))?;
            totals.add(&books.totals);
            generating |= books.phase == Phase::Generating;
            done &= books.phase == Phase::Done;
        }
        if done {
            return Ok(totals);
        }
        if generating || totals.settled() > progress.0 {
            progress = (totals.settled(), Instant::now());
        } else if progress.1.elapsed() > stall_limit {
            bail!(
                "the vehicles stopped reporting but delivered nothing for {} ({})",
                humantime::format_duration(stall_limit),
                describe(&totals)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_parse_with_and_without_a_phase() {
        let body = r#"{"started_at":"2026-11-21T18:00:00.5Z","phase":"done","vehicles":[{"vin":"YV1AAAAAA00000001","make":"Volvo",
            "model":"XC40","generated":3,"acknowledged":3,"retried":1,"dropped":0,"rejected":0,
            "pending":0,"last_acked_seq":2}],"totals":{"generated":3,"acknowledged":3,
            "retried":1,"dropped":0,"rejected":0,"pending":0}}"#;
        let books: StatsReport = serde_json::from_str(body).unwrap();
        assert_eq!(books.phase, Phase::Done);
        assert_eq!(
            books.started_at.unwrap().to_rfc3339(),
            "2026-11-21T18:00:00.500+00:00"
        );
        assert_eq!(books.vehicles[0].last_acked_seq, Some(2));
        assert_eq!(books.totals.retried, 1);
        let old = body.replace(
            r#""started_at":"2026-11-21T18:00:00.5Z","phase":"done","#,
            "",
        );
        let books: StatsReport = serde_json::from_str(&old).unwrap();
        assert_eq!(
            books.phase,
            Phase::Generating,
            "older vehicles report until stopped"
        );
        assert_eq!(books.started_at, None);
    }

    #[test]
    fn totals_are_described_in_words() {
        let one = Totals {
            generated: 10,
            acknowledged: 6,
            retried: 2,
            dropped: 1,
            rejected: 1,
            pending: 2,
        };
        assert_eq!(
            describe(&one),
            "generated 10, acknowledged 6, retried 2, rejected 1, dropped 1, pending 2"
        );
    }

    #[test]
    fn a_run_shorter_than_the_report_interval_is_refused() {
        let second = Duration::from_secs(1);
        assert!(check_duration(Duration::from_secs(60), second).is_ok());
        assert!(check_duration(second, second).is_ok());
        let err = check_duration(Duration::from_millis(500), second).unwrap_err();
        assert!(err.to_string().contains("--duration 500ms"), "{err}");
    }
}
