//! `status`, `logs`, `teardown` and the vehicles' books with `target.kind = "swarm"`: services
//! and their tasks per node, probed through the ports each task publishes on its node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bollard::query_parameters::{ListNodesOptionsBuilder, LogsOptionsBuilder};
use fleet_common::wire::{StatsQuery, StatsReport};
use futures::StreamExt;
use serde::Serialize;

use super::Ctx;
use super::status::ServiceStatus;
use crate::plan::{self, VEHICLE_PORT, VEHICLE_SERVICE};
use crate::swarm::tasks::stack_tasks;
use crate::swarm::{Cluster, TaskView};

/// One node as `fleet status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// fleet's name (or the swarm's hostname for a node fleet was not told about).
    pub name: String,
    /// Swarm node id.
    pub id: String,
    /// manager or worker.
    pub role: String,
    /// active, pause or drain.
    pub availability: String,
    /// ready, down, ...
    pub state: String,
    /// Running tasks of the stack on it, by instance.
    pub tasks: Vec<String>,
}

/// The swarm's nodes with the stack's running tasks on each.
pub async fn nodes(cluster: &Cluster, tasks: &[TaskView]) -> anyhow::Result<Vec<NodeStatus>> {
    let nodes = cluster
        .manager()
        .list_nodes(Some(ListNodesOptionsBuilder::default().build()))
        .await
        .context("list the swarm's nodes")?;
    Ok(nodes
        .into_iter()
        .map(|n| {
            let id = n.id.unwrap_or_default();
            let spec = n.spec.unwrap_or_default();
            let name = cluster.node(&id).map_or_else(
                || {
                    n.description
                        .and_then(|d| d.hostname)
                        .unwrap_or_else(|| id.clone())
                },
                |h| h.config.name.clone(),
            );
            NodeStatus {
                tasks: tasks
                    .iter()
                    .filter(|t| t.node == name && t.is_running())
                    .map(|t| t.instance.clone())
                    .collect(),
                id,
                role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
                availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
                state: n
                    .status
                    .and_then(|s| s.state)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                name,
            }
        })
        .collect())
}

fn published(t: &TaskView) -> BTreeMap<u16, String> {
    t.ports
        .iter()
        .map(|(c, h)| {
            let host = t.address.map_or_else(|| t.node.clone(), |a| a.to_string());
            (*c, format!("{host}:{h}"))
        })
        .collect()
}

/// Each infrastructure service's state and readiness (probed now) and the vehicle tasks; also
/// the tasks as containers (for the registry view) and the nodes.
pub async fn services(
    ctx: &Ctx,
    cluster: &Cluster,
    password: &str,
) -> anyhow::Result<(Vec<ServiceStatus>, Vec<ServiceStatus>, Vec<TaskView>)> {
    let tasks = stack_tasks(cluster, ctx.stack(), None).await?;
    let secrets = plan::Secrets {
        broker_storage_password: crate::state::existing_secret(
            &ctx.paths.state,
            crate::state::BROKER_STORAGE_PASSWORD_FILE,
        )?
        .unwrap_or_default(),
        ..plan::Secrets::default()
    };
    let images = crate::images::ImageSet::unresolved();
    let mut plan = plan::infra_plan(&ctx.config, &images, &secrets);
    plan::for_swarm(&mut plan, &ctx.config, &images, ctx.host());
    let mut services = Vec::new();
    for s in &plan.services {
        let name = s.spec.name.clone();
        let instance = s.instance().to_owned();
        let mine: Vec<&TaskView> = tasks.iter().filter(|t| t.service_name == name).collect();
        let status = match mine.iter().find(|t| t.is_running()).or(mine.first()) {
            None => ServiceStatus {
                service: instance,
                container: name,
                state: "missing".into(),
                ready: false,
                detail: "no service".into(),
                published: BTreeMap::new(),
            },
            Some(t) => {
                let probe = match (t.is_running(), t.address) {
                    (true, Some(host)) => crate::engine::probe_once(
                        &s.readiness,
                        &t.as_container(),
                        host,
                        password,
                        false,
                    )
                    .await
                    .map_err(|e| e.0),
                    (true, None) => Err(format!("on node {}, which is not configured", t.node)),
                    (false, _) => Err(format!("task is {}: {}", t.state, t.message)),
                };
                ServiceStatus {
                    service: instance,
                    container: format!("{} on {}", name, t.node),
                    state: t.state.clone(),
                    ready: probe.is_ok(),
                    detail: probe.unwrap_or_else(|e| e),
                    published: published(t),
                }
            }
        };
        services.push(status);
    }
    let vehicles = tasks
        .iter()
        .filter(|t| t.service == VEHICLE_SERVICE && t.is_current())
        .map(|t| ServiceStatus {
            service: VEHICLE_SERVICE.into(),
            container: format!("{} on {}", t.instance, t.node),
            state: t.state.clone(),
            ready: t.is_running(),
            detail: t.message.clone(),
            published: published(t),
        })
        .collect();
    Ok((services, vehicles, tasks))
}

/// The books of every running vehicle task, by instance.
pub async fn vehicle_books(
    cluster: &Cluster,
    stack: &str,
    detail: StatsQuery,
) -> anyhow::Result<Vec<(String, anyhow::Result<StatsReport>)>> {
    let tasks = stack_tasks(cluster, stack, Some(VEHICLE_SERVICE)).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let reads = tasks.iter().filter(|t| t.is_running()).map(|t| {
        let client = client.clone();
        async move {
            let books = async {
                let port = t
                    .ports
                    .get(&VEHICLE_PORT)
                    .context("stats port not published")?;
                let host = t.address.context("on a node that is not configured")?;
                super::launch_fleet::fetch_books(&client, SocketAddr::new(host, *port), detail)
                    .await
            }
            .await;
            (format!("{} on {}", t.instance, t.node), books)
        }
    });
    Ok(futures::stream::iter(reads).buffered(8).collect().await)
}

/// "N node(s) (a: 2, b: 1)": where the running vehicle tasks are.
pub async fn vehicle_nodes(cluster: &Cluster, stack: &str) -> anyhow::Result<String> {
    let tasks = stack_tasks(cluster, stack, Some(VEHICLE_SERVICE)).await?;
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.is_running()) {
        *per.entry(t.node.as_str()).or_default() += 1;
    }
    Ok(format!(
        "{} node(s) ({})",
        per.len(),
        per.iter()
            .map(|(n, c)| format!("{n}: {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Vehicles launched: the vehicle service's tasks wanted times the vehicles each simulates.
pub async fn vehicles_launched(ctx: &Ctx, cluster: &Cluster) -> anyhow::Result<u64> {
    let services =
        crate::swarm::tasks::stack_services(cluster, ctx.stack(), Some(VEHICLE_SERVICE)).await?;
    let mut launched = 0;
    for s in services {
        let spec = s.spec.unwrap_or_default();
        let replicas = spec
            .mode
            .and_then(|m| m.replicated)
            .and_then(|r| r.replicas)
            .unwrap_or(0);
        let per_task = spec
            .task_template
            .and_then(|t| t.container_spec)
            .and_then(|c| c.env)
            .unwrap_or_default()
            .iter()
            .find_map(|e| e.strip_prefix("VEHICLE_COUNT=").map(str::to_owned))
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        launched += (replicas * per_task).max(0) as u64;
    }
    Ok(launched)
}

/// `fleet logs SERVICE` on the swarm: the service's output from every task.
pub async fn logs(ctx: &Ctx, service: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    let cluster = super::on_swarm::cluster(ctx, false).await?;
    let name = plan::container_name(ctx.stack(), service);
    let known = crate::swarm::tasks::stack_services(&cluster, ctx.stack(), None).await?;
    if !known
        .iter()
        .any(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(name.as_str()))
    {
        bail!(
            "no service {name} in stack {}; see `fleet status`",
            ctx.stack()
        );
    }
    let mut stream = cluster.manager().service_logs(
        &name,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .follow(follow)
                .tail(&tail.to_string())
                .build(),
        ),
    );
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("read the logs of service {name}"))?;
        print!("{chunk}");
    }
    Ok(())
}

/// `fleet teardown` on the swarm.
pub async fn teardown(
    ctx: &Ctx,
    fleet_only: bool,
) -> anyhow::Result<crate::swarm::teardown::Removed> {
    let stack = ctx.stack();
    let cluster = super::on_swarm::cluster(ctx, false).await?;
    let step = ctx.progress.step(format!("teardown {stack} on the swarm"));
    let removed =
        crate::swarm::teardown::teardown(&cluster, stack, fleet_only.then_some(VEHICLE_SERVICE))
            .await?;
    if !fleet_only {
        crate::state::remove(&ctx.paths.state)?;
    }
    step.finish("done");
    println!(
        "removed {} service(s), {} secret(s), {} network(s), {} volume(s) of stack {stack} on {} node(s)",
        removed.services,
        removed.secrets,
        removed.networks,
        removed.volumes,
        cluster.nodes.len()
    );
    if removed.containers > 0 {
        println!(
            "{} task container(s) outlived their service and were removed by fleet",
            removed.containers
        );
    }
    Ok(removed)
}
