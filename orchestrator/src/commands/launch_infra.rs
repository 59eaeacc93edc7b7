//! `fleet launch-infra`: images, network, volumes, then the services in dependency waves (each
//! wave in parallel), each converged and probed. A failed launch removes what it created.

use anyhow::Context as _;
use futures::future::join_all;

use super::Ctx;
use crate::docker::Docker;
use crate::engine::{self, Action, ReadyError};
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

#[derive(Default)]
struct Created {
    containers: Vec<String>,
    volumes: Vec<String>,
    network: Option<String>,
}

/// Runs the command: brings the infrastructure to its plan and prints the events URL.
pub async fn run(ctx: &Ctx, keep_on_failure: bool) -> anyhow::Result<Launched> {
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
    let password = crate::state::postgres_password(&ctx.paths.state)?;
    let images = images::ensure_images(&docker, &ctx.config, &ctx.paths, &ctx.progress)
        .await
        .context("prepare images")?;
    let secrets = plan::Secrets {
        postgres_password: password.clone(),
        ingest_tokens: read_tokens(ctx)?,
    };
    let plan = plan::infra_plan(&ctx.config, &images, &secrets);
    let mut created = Created::default();
    match apply(ctx, &docker, &plan, &password, &mut created).await {
        Ok(services) => {
            let step = ctx
                .progress
                .step("live configuration -> ZooKeeper".to_owned());
            match super::config::write_initial(ctx).await {
                Ok(_) => step.finish("written from the config file"),
                Err(e) => {
                    step.fail(&format!("{e:#}"));
                    return Err(e);
                }
            }
            println!("stack {} is ready", ctx.stack());
            println!("events: {}", ctx.events_url());
            Ok(Launched { services, images })
        }
        Err(e) => {
            if keep_on_failure {
                ctx.progress
                    .line("keeping what this launch created (--keep-on-failure)");
            } else {
                rollback(ctx, &docker, &created).await;
            }
            Err(e)
        }
    }
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
    created: &mut Created,
) -> anyhow::Result<Vec<(Service, Action, String)>> {
    let stack = ctx.stack();
    if docker.ensure_network(&plan.network, stack).await? {
        created.network = Some(plan.network.clone());
    }
    for (volume, service) in &plan.volumes {
        if docker.ensure_volume(volume, stack, service).await? {
            created.volumes.push(volume.clone());
        }
    }
    stop_dependents_of_changes(ctx, docker, plan).await?;
    let host = engine::connect_host(&ctx.config.stack.bind_address);
    let mut report = Vec::new();
    for wave in plan::waves(&plan.services) {
        // Every container of the wave's services (replicas included) at once.
        let members = plan.services.iter().filter(|s| wave.contains(&s.service));
        let results = join_all(members.map(|service_plan| async move {
            let step = ctx
                .progress
                .step(format!("{:<11}", service_plan.instance()));
            let applied = match engine::converge(docker, &service_plan.spec).await {
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
            if let Some(action) = action
                && action.created_it()
            {
                created.containers.push(service_plan.spec.name.clone());
            }
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

async fn rollback(ctx: &Ctx, docker: &Docker, created: &Created) {
    if created.containers.is_empty() && created.volumes.is_empty() && created.network.is_none() {
        return;
    }
    let step = ctx.progress.step("rollback");
    for name in &created.containers {
        if let Err(e) = docker.remove_container(name).await {
            ctx.progress.line(format!("rollback: {e}"));
        }
    }
    for volume in &created.volumes {
        if let Err(e) = docker.remove_volume(volume).await {
            ctx.progress.line(format!("rollback: {e}"));
        }
    }
    if let Some(network) = &created.network
        && let Err(e) = docker.remove_network(network).await
    {
        ctx.progress.line(format!("rollback: {e}"));
    }
    step.finish(&format!(
        "removed {} container(s), {} volume(s){} created by this launch",
        created.containers.len(),
        created.volumes.len(),
        if created.network.is_some() {
            " and the network"
        } else {
            ""
        }
    ));
}
