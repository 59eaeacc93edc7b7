//! `launch-infra` and `launch-fleet` with `target.kind = "swarm"`: the same plan, applied as
//! Swarm services (see [`crate::swarm`]). The images are built on fleet's own engine as on one
//! engine and copied to the nodes that lack them; the stack's passwords become Swarm secrets.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fleet_common::wire::{Phase, StatsQuery, StatsReport};
use futures::future::join_all;

use super::Ctx;
use super::launch_fleet::{self, FleetOptions};
use crate::engine::interrupt::Signals;
use crate::engine::{Action, Interrupted};
use crate::images::{self, Resolved};
use crate::plan::{self, Service};
use crate::swarm::apply::{self, Applied};
use crate::swarm::rollback::{SwarmChange, SwarmJournal};
use crate::swarm::tasks::stack_services;
use crate::swarm::translate::{self, Placement, SwarmService};
use crate::swarm::{Cluster, images as node_images};

/// The swarm of the config, attached as it is (`form`: initialised or joined first).
pub async fn cluster(ctx: &Ctx, form: bool) -> anyhow::Result<Cluster> {
    let swarm = ctx.swarm().context("target.kind is not \"swarm\"")?;
    if !form {
        return Ok(Cluster::attach(swarm, &ctx.paths.workspace).await?);
    }
    let step = ctx
        .progress
        .step(format!("swarm      {} node(s)", swarm.nodes.len()));
    let mut cluster = Cluster::connect(swarm, &ctx.paths.workspace).await?;
    match cluster.form().await {
        Ok(done) if done.is_empty() => step.finish("every node in the swarm"),
        Ok(done) => step.finish(&done.join("; ")),
        Err(e) => {
            step.fail(&e.to_string());
            return Err(e.into());
        }
    }
    Ok(cluster)
}

/// Where tasks go on `cluster`.
pub fn placement(ctx: &Ctx, cluster: &Cluster) -> Placement {
    let swarm = ctx.swarm().expect("a swarm target");
    Placement {
        stateful_node_id: cluster.stateful().id.clone(),
        spread_constraints: swarm.spread_constraints.clone(),
        stop_grace: swarm.stop_grace,
    }
}

/// Copies `spread` to every node and `pinned` to the stateful node, where they lack them.
async fn distribute(
    ctx: &Ctx,
    cluster: &Cluster,
    spread: &[&Resolved],
    pinned: &[&Resolved],
) -> anyhow::Result<()> {
    let step = ctx.progress.step("images     -> swarm nodes".to_owned());
    let started = Instant::now();
    let source = ctx.docker().await?;
    let wanted: Vec<_> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let mut images = spread.to_vec();
            if i == cluster.stateful {
                images.extend(
                    pinned
                        .iter()
                        .copied()
                        .filter(|p| !spread.iter().any(|s| s.reference == p.reference)),
                );
            }
            (node, images)
        })
        .collect();
    match node_images::distribute(source.bollard(), &wanted).await {
        Ok(copied) => {
            let loaded: Vec<String> = copied
                .iter()
                .filter(|c| c.loaded)
                .map(|c| format!("{} on {}", c.image, c.node))
                .collect();
            step.finish(&if loaded.is_empty() {
                "every node has every image".to_owned()
            } else {
                format!(
                    "loaded {} in {:.1} s",
                    loaded.join(", "),
                    started.elapsed().as_secs_f64()
                )
            });
            Ok(())
        }
        Err(e) => {
            step.fail(&e.to_string());
            Err(e.into())
        }
    }
}

/// `launch-infra` on the swarm. A failure, or SIGINT/SIGTERM, puts back what this run changed
/// on the swarm (see [`SwarmJournal`]) unless `keep_on_failure`.
pub async fn launch_infra(
    ctx: &Ctx,
    keep_on_failure: bool,
) -> anyhow::Result<super::launch_infra::Launched> {
    let mut signals = Signals::listen().context("listen for SIGINT and SIGTERM")?;
    let stack = ctx.stack();
    let cluster = cluster(ctx, true).await?;
    let first_launch = stack_services(&cluster, stack, None).await?.is_empty();
    let journal = SwarmJournal::new(stack, first_launch);
    let outcome = tokio::select! {
        outcome = launch(ctx, &cluster, &journal) => outcome,
        signal = signals.recv() => {
            ctx.progress.line(format!("{}: stopping the launch", signal.name()));
            Err(Interrupted(signal).into())
        }
    };
    if outcome.is_err() && !journal.changes().is_empty() {
        if keep_on_failure {
            ctx.progress
                .line("keeping what this launch changed (--keep-on-failure)");
        } else {
            rollback(ctx, &cluster, &journal).await;
        }
    }
    outcome
}

/// Everything `launch-infra` does on the swarm once it is formed, recording each change.
async fn launch(
    ctx: &Ctx,
    cluster: &Cluster,
    journal: &SwarmJournal,
) -> anyhow::Result<super::launch_infra::Launched> {
    let stack = ctx.stack();
    let docker = ctx.docker().await?;
    let images = images::ensure_images(&docker, &ctx.config, &ctx.paths, &ctx.progress)
        .await
        .context("prepare images")?;
    distribute(
        ctx,
        cluster,
        &[&images.broker, &images.runtime],
        &[&images.zookeeper, &images.postgres],
    )
    .await?;
    let password = crate::state::postgres_password(&ctx.paths.state)?;
    let secrets = super::launch_infra::stack_secrets(ctx, &password)?;
    let mut plan = plan::infra_plan(&ctx.config, &images, &secrets);
    plan::protect_registry(
        &mut plan,
        &super::launch_infra::registry_credentials(ctx)?.to_bytes(),
    );
    plan::for_swarm(&mut plan, &ctx.config, &images, ctx.host());
    let services = translate::infra_services(&plan, &placement(ctx, cluster));
    if apply::ensure_network(cluster, &plan.network, stack).await? {
        journal.record(SwarmChange::CreatedNetwork(plan.network.clone()));
        ctx.progress
            .line(format!("created overlay network {}", plan.network));
    }
    let all_secrets: Vec<_> = services.iter().flat_map(|s| s.secrets.iter()).collect();
    let ensured = apply::ensure_secrets(cluster, stack, &all_secrets).await?;
    for id in &ensured.created {
        journal.record(SwarmChange::CreatedSecret(id.clone()));
    }
    let mut report = Vec::new();
    for wave in plan::waves(&plan.services) {
        let members = services
            .iter()
            .filter(|s| s.service.is_some_and(|x| wave.contains(&x)));
        let results = join_all(
            members.map(|s| apply_and_wait(ctx, cluster, s, &ensured.ids, &password, journal)),
        )
        .await;
        for result in results {
            report.push(result?);
        }
    }
    super::launch_infra::write_live_config(ctx).await?;
    println!(
        "stack {stack} is ready on the swarm ({} node(s)); stateful services on {}",
        cluster.nodes.len(),
        cluster.stateful().config.name
    );
    println!("events: {}", ctx.events_url());
    Ok(super::launch_infra::Launched {
        services: report,
        images,
    })
}

/// Undoes what the journal holds, saying what it did.
async fn rollback(ctx: &Ctx, cluster: &Cluster, journal: &SwarmJournal) {
    let step = ctx.progress.step("rollback");
    let undone = journal.rollback(cluster).await;
    let summary = format!(
        "removed {} service(s), secret(s), network(s) or volume(s) this launch created, put {} service(s) back to their previous spec",
        undone.removed, undone.restored
    );
    super::launch_infra::report_rollback(ctx, step, &undone.errors, &summary);
}

async fn apply_and_wait(
    ctx: &Ctx,
    cluster: &Cluster,
    s: &SwarmService,
    secret_ids: &std::collections::HashMap<String, String>,
    password: &str,
    journal: &SwarmJournal,
) -> anyhow::Result<(Service, Action, String)> {
    let step = ctx.progress.step(format!("{:<11}", s.name));
    let applied = match apply::apply_service(cluster, ctx.stack(), s, secret_ids).await {
        Ok(applied) => {
            match applied {
                Applied::Created => journal.record(SwarmChange::CreatedService {
                    name: s.name.clone(),
                    label: s.label().to_owned(),
                }),
                Applied::Updated => journal.record(SwarmChange::UpdatedService(s.name.clone())),
                Applied::Kept => {}
            }
            applied
        }
        Err(e) => {
            step.fail(&e.to_string());
            return Err(e.into());
        }
    };
    step.update(&format!(
        "{}; waiting: tasks running, probe",
        applied.word()
    ));
    match apply::wait_ready(cluster, ctx.stack(), s, password, true).await {
        Ok(report) => {
            step.finish(&format!("{}, ready: {report}", applied.word()));
            let action = match applied {
                Applied::Created => Action::Created,
                Applied::Updated => Action::Recreated,
                Applied::Kept => Action::Kept,
            };
            Ok((
                s.service.expect("an infrastructure service"),
                action,
                report,
            ))
        }
        Err(e) => {
            step.fail(&format!("not ready: {}", e.last_error));
            Err(e.into())
        }
    }
}

/// `launch-fleet` on the swarm: the vehicle service scaled to the containers N vehicles need.
pub async fn launch_fleet(
    ctx: &Ctx,
    num_vehicles: u32,
    per_container: u32,
    options: FleetOptions,
) -> anyhow::Result<()> {
    if !num_vehicles.is_multiple_of(per_container) {
        bail!(
            "on a swarm every vehicle task simulates the same number of vehicles: --num-vehicles \
             {num_vehicles} must be a multiple of --per-container {per_container}"
        );
    }
    let stack = ctx.stack();
    let cluster = cluster(ctx, false).await?;
    let ingest =
        crate::swarm::tasks::stack_tasks(&cluster, stack, Some(Service::Ingest.name())).await?;
    if !ingest.iter().any(|t| t.is_running()) {
        bail!("ingest of stack {stack} is not running: run `fleet launch-infra` first");
    }
    let docker = ctx.docker().await?;
    let base = images::ensure_base(&docker, &ctx.config, &ctx.paths.cache, &ctx.progress).await?;
    let runtime = images::runtime_image(&docker, &ctx.config, &ctx.paths, &ctx.progress, &base)
        .await
        .context("prepare the runtime image")?;
    distribute(ctx, &cluster, &[&runtime], &[]).await?;
    let containers = num_vehicles / per_container;
    let mut specs = plan::fleet_plan(
        &ctx.config,
        &runtime,
        per_container,
        per_container,
        options.legacy_form,
        options.duration,
    );
    let credentials = super::config::credentials(ctx)?.with_context(|| {
        format!("stack {stack} has no registry identity yet: run `fleet launch-infra` first")
    })?;
    plan::protect_member(&mut specs[0], &credentials.to_bytes());
    let service = translate::vehicle_service(
        &specs[0],
        stack,
        containers,
        per_container,
        &placement(ctx, &cluster),
    );
    let secret_ids =
        apply::ensure_secrets(&cluster, stack, &service.secrets.iter().collect::<Vec<_>>())
            .await?
            .ids;
    let step = ctx
        .progress
        .step(format!("vehicles   {num_vehicles} in {containers} task(s)"));
    let applied = apply::apply_service(&cluster, stack, &service, &secret_ids).await?;
    step.update(&format!("{}; waiting for the tasks", applied.word()));
    let mut waiting = service.clone();
    waiting.timeout = ctx.config.vehicles.start_timeout;
    if let Err(e) = apply::wait_ready(&cluster, stack, &waiting, "", false).await {
        step.fail(&e.last_error);
        return Err(e.into());
    }
    step.update("tasks running; waiting for first acknowledged events");
    match wait_books(
        ctx,
        &cluster,
        containers,
        StatsQuery::EVERY_VEHICLE,
        |b| b.vehicles.iter().all(|v| v.books.acknowledged > 0),
        ctx.config.vehicles.start_timeout,
    )
    .await
    {
        Ok(_) => step.finish(&format!("{}, all acknowledged", applied.word())),
        Err(e) => {
            step.fail(&e.to_string());
            return Err(e);
        }
    }
    let nodes = super::swarm_view::vehicle_nodes(&cluster, stack).await?;
    let Some(duration) = options.duration else {
        println!("fleet of {num_vehicles} vehicle(s) running in {containers} task(s) on {nodes}");
        println!("events: {}", ctx.events_url());
        return Ok(());
    };
    let limit = duration + Duration::from_secs(120);
    let done = wait_books(
        ctx,
        &cluster,
        containers,
        StatsQuery::TOTALS_ONLY,
        |b| b.phase == Phase::Done,
        limit,
    );
    let totals = launch_fleet::delivered(ctx, duration, done).await?;
    println!(
        "fleet of {num_vehicles} vehicle(s) in {containers} task(s) on {nodes} reported for {}: {}",
        humantime::format_duration(duration),
        launch_fleet::describe(&totals)
    );
    println!("the vehicles keep their books (GET /stats) until `fleet teardown --fleet-only`");
    Ok(())
}

/// Waits until `containers` vehicle tasks answer and each one's books pass `done`; the sums.
async fn wait_books(
    ctx: &Ctx,
    cluster: &Cluster,
    containers: u32,
    detail: StatsQuery,
    done: impl Fn(&StatsReport) -> bool,
    limit: Duration,
) -> anyhow::Result<launch_fleet::Totals> {
    let started = Instant::now();
    loop {
        let books = super::swarm_view::vehicle_books(cluster, ctx.stack(), detail).await?;
        let read: Vec<_> = books.iter().filter_map(|(_, b)| b.as_ref().ok()).collect();
        if read.len() as u32 == containers && read.iter().all(|b| done(b)) {
            let mut totals = launch_fleet::Totals::default();
            for b in read {
                totals.add(&b.totals);
            }
            return Ok(totals);
        }
        if started.elapsed() > limit {
            let why: Vec<String> = books
                .iter()
                .map(|(name, b)| match b {
                    Ok(b) => format!("{name}: {}", launch_fleet::describe(&b.totals)),
                    Err(e) => format!("{name}: {e:#}"),
                })
                .collect();
            bail!(
                "after {:?}, {} of {containers} vehicle task(s) answered and not all are there yet: {}",
                limit,
                read.len(),
                why.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
