//! `fleet launch-infra`: images, network, volumes, then the services in dependency waves (each
//! wave in parallel), each converged and probed. A failed or interrupted launch puts back what it changed.

use anyhow::Context as _;
use futures::future::join_all;

use super::Ctx;
use crate::docker::Docker;
use crate::engine::interrupt::Signals;
use crate::engine::{self, Action, Change, Interrupted, Journal, ReadyError};
use crate::images::{self, ImageSet};
use crate::plan::{self, InfraPlan, Service};

/// What a launch did, per service.
#[derive(Debug)]
pub struct Launched {
    /// Service to (action, readiness report).
    pub services: Vec<(Service, Action, String)>,
    /// The images used.
    pub images: ImageSet,
}

/// Runs the command: brings the infrastructure to its plan and prints the events URL.
///
/// A failure, or SIGINT/SIGTERM, rolls back what this run changed (see [`Journal`]): it
/// removes what it created, brings back what it replaced and starts again what it stopped.
pub async fn run(ctx: &Ctx, keep_on_failure: bool) -> anyhow::Result<Launched> {
    if ctx.swarm().is_some() {
        return super::on_swarm::launch_infra(ctx, keep_on_failure).await;
    }
    let mut signals = Signals::listen().context("listen for SIGINT and SIGTERM")?;
    let docker = ctx.docker().await?;
    // Preflight, before anything is built or created: names and ports do not depend on images.
    let names_only = plan::infra_plan(
        &ctx.config,
        &ImageSet::unresolved(),
        &plan::Secrets::default(),
    );
    remove_surplus_replicas(ctx, &docker, &names_only).await?;
    let specs: Vec<_> = names_only.services.iter().map(|s| &s.spec).collect();
    engine::check_ports(&docker, &specs)
        .await
        .context("preflight failed; nothing was created")?;
    let journal = Journal::new(ctx.stack());
    let outcome = tokio::select! {
        outcome = launch(ctx, &docker, &journal) => outcome,
        signal = signals.recv() => {
            ctx.progress.line(format!("{}: stopping the launch", signal.name()));
            Err(Interrupted(signal).into())
        }
    };
    match outcome {
        Ok(launched) => {
            journal
                .commit(&docker)
                .await
                .context("remove the containers this launch replaced")?;
            println!("stack {} is ready", ctx.stack());
            println!("events: {}", ctx.events_url());
            Ok(launched)
        }
        Err(e) => {
            if keep_on_failure {
                ctx.progress
                    .line("keeping what this launch changed (--keep-on-failure)");
            } else {
                rollback(ctx, &docker, &journal).await;
            }
            Err(e)
        }
    }
}

/// Everything after the preflight: images, secrets, the plan applied, the live configuration.
async fn launch(ctx: &Ctx, docker: &Docker, journal: &Journal) -> anyhow::Result<Launched> {
    let password = crate::state::postgres_password(&ctx.paths.state)?;
    let images = images::ensure_images(docker, &ctx.config, &ctx.paths, &ctx.progress)
        .await
        .context("prepare images")?;
    let secrets = stack_secrets(ctx, &password)?;
    let mut plan = plan::infra_plan(&ctx.config, &images, &secrets);
    plan::protect_registry(&mut plan, &registry_credentials(ctx)?.to_bytes());
    let services = apply(ctx, docker, &plan, &password, journal).await?;
    write_live_config(ctx).await?;
    Ok(Launched { services, images })
}

/// Writes the live configuration into ZooKeeper from the config file, as a progress step.
pub async fn write_live_config(ctx: &Ctx) -> anyhow::Result<()> {
    let step = ctx
        .progress
        .step("live configuration -> ZooKeeper".to_owned());
    match super::config::write_initial(ctx).await {
        Ok(_) => {
            step.finish("written from the config file");
            Ok(())
        }
        Err(e) => {
            step.fail(&format!("{e:#}"));
            Err(e)
        }
    }
}

/// The stack's secrets from its state directory (generated there on first use), with the
/// application role's `password`.
pub fn stack_secrets(ctx: &Ctx, password: &str) -> anyhow::Result<plan::Secrets> {
    Ok(plan::Secrets {
        postgres_password: password.to_owned(),
        postgres_admin_password: crate::state::postgres_admin_password(&ctx.paths.state)?,
        broker_storage_password: crate::state::secret(
            &ctx.paths.state,
            crate::state::BROKER_STORAGE_PASSWORD_FILE,
        )?,
        ingest_tokens: read_tokens(ctx)?,
    })
}

/// The stack's ZooKeeper identity: read from the state directory, or generated there.
pub fn registry_credentials(ctx: &Ctx) -> anyhow::Result<fleet_registry::Credentials> {
    let password = crate::state::secret(&ctx.paths.state, crate::state::ZOOKEEPER_PASSWORD_FILE)?;
    Ok(fleet_registry::Credentials::fleet(&password))
}

/// The content of `ingest.tokens_file` (relative to the config file), when set.
fn read_tokens(ctx: &Ctx) -> anyhow::Result<Option<Vec<u8>>> {
    let file = &ctx.config.ingest.tokens_file;
    if file.is_empty() {
        return Ok(None);
    }
    let path = ctx.paths.workspace.join(file);
    std::fs::read(&path)
        .map(Some)
        .with_context(|| format!("read ingest.tokens_file {}", path.display()))
}

async fn apply(
    ctx: &Ctx,
    docker: &Docker,
    plan: &InfraPlan,
    password: &str,
    journal: &Journal,
) -> anyhow::Result<Vec<(Service, Action, String)>> {
    let stack = ctx.stack();
    if docker.ensure_network(&plan.network, stack).await? {
        journal.record(Change::Network(plan.network.clone()));
    }
    for (volume, service) in &plan.volumes {
        if docker.ensure_volume(volume, stack, service).await? {
            journal.record(Change::Volume(volume.clone()));
        }
    }
    stop_dependents_of_changes(ctx, docker, plan, journal).await?;
    let host = ctx.host();
    let mut report = Vec::new();
    for wave in plan::waves(&plan.services) {
        // Every container of the wave's services (replicas included) at once.
        let members = plan.services.iter().filter(|s| wave.contains(&s.service));
        let results = join_all(members.map(|service_plan| async move {
            let step = ctx
                .progress
                .step(format!("{:<11}", service_plan.instance()));
            let applied = match engine::converge(docker, &service_plan.spec, journal).await {
                Ok(applied) => applied,
                Err(e) => {
                    step.fail(&e.to_string());
                    return (service_plan, Err(anyhow::Error::from(e)), None);
                }
            };
            step.update(&format!(
                "{}; waiting: {}",
                applied.action.word(),
                service_plan.readiness.describe()
            ));
            match engine::wait_ready(docker, service_plan, host, password).await {
                Ok(outcome) => {
                    step.finish(&format!("{}, ready: {outcome}", applied.action.word()));
                    (service_plan, Ok(outcome), Some(applied.action))
                }
                Err(e) => {
                    step.fail(&format!("not ready: {}", e.last_error));
                    (
                        service_plan,
                        Err(anyhow::Error::from(e)),
                        Some(applied.action),
                    )
                }
            }
        }))
        .await;
        let mut failure: Option<anyhow::Error> = None;
        for (service_plan, result, action) in results {
            match result {
                Ok(outcome) => {
                    report.push((service_plan.service, action.expect("converged"), outcome))
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            if let Some(ready) = e.downcast_ref::<ReadyError>() {
                ctx.progress.line(format!(
                    "service {} failed its probe: {}",
                    ready.service, ready.probe
                ));
            }
            return Err(e);
        }
    }
    Ok(report)
}

/// Stops the running dependents of every service that is about to be recreated or started, so
/// that no client keeps talking to a dependency that goes away under it (a broker replaced
/// under a live idempotent producer can wedge); they are started again in their wave.
async fn stop_dependents_of_changes(
    ctx: &Ctx,
    docker: &Docker,
    plan: &InfraPlan,
    journal: &Journal,
) -> anyhow::Result<()> {
    let mut changing = Vec::new();
    for s in &plan.services {
        let current = docker.find_container(&s.spec.name, ctx.stack()).await?;
        let unchanged = current
            .as_ref()
            .is_some_and(|c| c.is_running() && c.config_hash == s.spec.config_hash());
        if !unchanged {
            changing.push(s.service);
        }
    }
    let dependents = plan::dependents(&plan.services, &changing);
    // Every container of a dependent service: the plan's, and replicas the plan no longer has.
    for info in docker.list_stack_containers(ctx.stack(), None).await? {
        let of_dependent = dependents.iter().any(|d| d.name() == info.service);
        if of_dependent && info.is_running() {
            let name = &info.name;
            ctx.progress
                .line(format!("stopping {name} while what it depends on changes"));
            journal.record(Change::Stopped { name: name.clone() });
            docker.stop(name).await?;
        }
    }
    Ok(())
}

/// Removes the infrastructure containers the plan no longer has (replicas scaled away, or the
/// balancer when ingest is back to one container), so that their ports and group memberships
/// are free for the plan's containers.
async fn remove_surplus_replicas(
    ctx: &Ctx,
    docker: &Docker,
    plan: &InfraPlan,
) -> anyhow::Result<()> {
    for info in docker.list_stack_containers(ctx.stack(), None).await? {
        let infra = Service::ALL.iter().any(|s| s.name() == info.service);
        let planned = plan.services.iter().any(|s| s.spec.name == info.name);
        if infra && !planned {
            ctx.progress
                .line(format!("removing {}: no longer in the plan", info.name));
            docker.remove_container(&info.name).await?;
        }
    }
    Ok(())
}

/// Undoes what the journal holds, saying what it did.
async fn rollback(ctx: &Ctx, docker: &Docker, journal: &Journal) {
    if journal.changes().is_empty() {
        return;
    }
    let step = ctx.progress.step("rollback");
    let undone = journal.rollback(docker).await;
    let summary = format!(
        "removed {} container(s), volume(s) or network(s) this launch created, restored {} it replaced, put back {} it started or stopped",
        undone.removed, undone.restored, undone.reverted
    );
    report_rollback(ctx, step, &undone.errors, &summary);
}

/// Ends a rollback's progress `step` with `summary`, after a line per error; failed if any.
pub(super) fn report_rollback(
    ctx: &Ctx,
    step: crate::output::Step,
    errors: &[String],
    summary: &str,
) {
    for error in errors {
        ctx.progress.line(format!("rollback: {error}"));
    }
    if errors.is_empty() {
        step.finish(summary);
    } else {
        step.fail(summary);
    }
}
