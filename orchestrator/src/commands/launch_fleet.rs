//! `fleet launch-fleet --num-vehicles N`: converges the vehicle containers to exactly the ones
//! N vehicles need (K per container), removes the rest, and waits until every vehicle's first
//! events are acknowledged by ingest.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::Ctx;
use crate::docker::{ContainerInfo, Docker};
use crate::engine;
use crate::plan::{self, Service, VEHICLE_PORT, VEHICLE_SERVICE};

/// Containers converged at once.
const PARALLEL: usize = 8;

/// Runs the command with vehicles posting the current JSON format.
pub async fn run(ctx: &Ctx, num_vehicles: u32, per_container: Option<u32>) -> anyhow::Result<()> {
    run_with(ctx, num_vehicles, per_container, false).await
}

/// Runs the command; with `legacy_form` the vehicles post the old client's form-encoded events.
pub async fn run_with(
    ctx: &Ctx,
    num_vehicles: u32,
    per_container: Option<u32>,
    legacy_form: bool,
) -> anyhow::Result<()> {
    let per_container = per_container.unwrap_or(ctx.config.vehicles.per_container);
    if per_container == 0 {
        bail!("--per-container must be at least 1");
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
    let specs = plan::fleet_plan(
        &ctx.config,
        &runtime,
        num_vehicles,
        per_container,
        legacy_form,
    );

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
    let applied: Vec<_> = stream::iter(specs.iter().map(|spec| engine::converge(&docker, spec)))
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
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
    println!(
        "fleet of {num_vehicles} vehicle(s) running in {} container(s)",
        specs.len()
    );
    println!("events: {}", ctx.events_url());
    Ok(())
}

/// Waits until every vehicle of every container has at least one acknowledged event.
async fn wait_acknowledged(ctx: &Ctx, docker: &Docker, names: &[String]) -> anyhow::Result<()> {
    let host = engine::connect_host(&ctx.config.stack.bind_address);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let started = Instant::now();
    let mut pending: Vec<String> = names.to_vec();
    let mut last_error = String::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for name in pending {
            let ready = async {
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
                let vehicles =
                    crate::probes::vehicle_stats(&client, std::net::SocketAddr::new(host, *port))
                        .await?;
                Ok(!vehicles.is_empty() && vehicles.iter().all(|v| v.acknowledged > 0))
            }
            .await;
            match ready {
                Ok(true) => {}
                Ok(false) => still.push(name),
                Err(e) => {
                    last_error = format!("{name}: {e:#}");
                    still.push(name);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
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
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
