//! `fleet status [--json]`: each service's container state and readiness (probed now), the
//! published URLs and the vehicle containers.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Ctx;
use crate::engine;
use crate::plan::{self, VEHICLE_SERVICE};

/// One service's status.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    /// Service name, or `<service>-<i>` for a replica (what `fleet logs` takes).
    pub service: String,
    /// Container name.
    pub container: String,
    /// Docker's state, or `missing`.
    pub state: String,
    /// Whether the readiness probe passes now.
    pub ready: bool,
    /// What the probe said.
    pub detail: String,
    /// Published ports: container port to host address.
    pub published: BTreeMap<u16, String>,
}

/// How far the consumer is behind on one partition of the input topic.
#[derive(Debug, Serialize)]
pub struct PartitionLag {
    /// Partition.
    pub partition: i32,
    /// The broker's high watermark.
    pub high_watermark: i64,
    /// The next offset the consumer will store (from `consumer_offsets`, written with the rows).
    pub stored_offset: i64,
    /// Records not yet stored.
    pub lag: i64,
}

/// The whole status.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The stack.
    pub stack: String,
    /// The events endpoint.
    pub events_url: String,
    /// Kafka bootstrap address for clients on the host.
    pub kafka_bootstrap: String,
    /// PostgreSQL connection string for clients on the host (password in `password_file`).
    pub postgres_url: String,
    /// The file holding the PostgreSQL password (0600).
    pub password_file: String,
    /// Infrastructure services.
    pub services: Vec<ServiceStatus>,
    /// Vehicle containers.
    pub vehicle_containers: Vec<ServiceStatus>,
    /// Rows in `diag`, when PostgreSQL answers.
    pub rows_stored: Option<i64>,
    /// Consumer lag per partition, when the broker and PostgreSQL answer.
    pub consumer_lag: Option<Vec<PartitionLag>>,
    /// Live members in ZooKeeper next to the running containers, per role.
    pub registry: super::members::RegistryView,
    /// Whether every infrastructure service is ready.
    pub all_ready: bool,
    /// On a swarm: its nodes, with the stack's running tasks on each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm_nodes: Option<Vec<super::swarm_view::NodeStatus>>,
}

/// Rows stored and the consumer's lag per partition (None where a part does not answer).
async fn pipeline_figures(
    ctx: &Ctx,
    host: std::net::IpAddr,
    password: &str,
) -> (Option<i64>, Option<Vec<PartitionLag>>) {
    let c = &ctx.config;
    let pg_addr = std::net::SocketAddr::new(host, c.postgres.host_port);
    let Ok(pg) =
        crate::probes::postgres_connect(pg_addr, &c.postgres.user, password, &c.postgres.database)
            .await
    else {
        return (None, None);
    };
    let rows = pg
        .query_one("SELECT count(*) FROM diag", &[])
        .await
        .ok()
        .map(|r| r.get::<_, i64>(0));
    let stored: Vec<(i32, i64)> = match pg
        .query(
            "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
            &[&c.consumer.group, &c.broker.topic],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(_) => return (rows, None),
    };
    let bootstrap = std::net::SocketAddr::new(host, c.broker.host_port).to_string();
    let topic = c.broker.topic.clone();
    let watermarks = tokio::task::spawn_blocking(move || {
        crate::probes::partition_watermarks(&bootstrap, &topic)
    })
    .await
    .ok()
    .and_then(Result::ok);
    let lag = watermarks.map(|marks| {
        marks
            .into_iter()
            .map(|(partition, high)| {
                let stored_offset = stored
                    .iter()
                    .find(|(p, _)| *p == partition)
                    .map(|(_, o)| *o)
                    .unwrap_or(0);
                PartitionLag {
                    partition,
                    high_watermark: high,
                    stored_offset,
                    lag: (high - stored_offset).max(0),
                }
            })
            .collect()
    });
    (rows, lag)
}

/// Collects the status.
pub async fn collect(ctx: &Ctx) -> anyhow::Result<Status> {
    if ctx.swarm().is_some() {
        return collect_on_swarm(ctx).await;
    }
    let docker = ctx.docker().await?;
    let stack = ctx.stack();
    let host = ctx.host();
    let password_file = ctx.paths.state.join(crate::state::PASSWORD_FILE);
    let password = std::fs::read_to_string(&password_file).unwrap_or_default();
    let containers = docker.list_stack_containers(stack, None).await?;
    let published = |info: &crate::docker::ContainerInfo| {
        info.ports
            .iter()
            .map(|(c, h)| (*c, format!("{host}:{h}")))
            .collect::<BTreeMap<_, _>>()
    };
    // The containers the plan has (names and probes do not depend on the images).
    // The broker storage's probe logs in with its own password.
    let secrets = plan::Secrets {
        broker_storage_password: std::fs::read_to_string(
            ctx.paths
                .state
                .join(crate::state::BROKER_STORAGE_PASSWORD_FILE),
        )
        .unwrap_or_default()
        .trim_end()
        .to_owned(),
        ..plan::Secrets::default()
    };
    let plan = plan::infra_plan(
        &ctx.config,
        &crate::images::ImageSet::unresolved(),
        &secrets,
    );
    let mut services = Vec::new();
    for service_plan in &plan.services {
        let name = service_plan.spec.name.clone();
        let instance = service_plan.instance().to_owned();
        let status = match containers.iter().find(|c| c.name == name) {
            None => ServiceStatus {
                service: instance,
                container: name,
                state: "missing".into(),
                ready: false,
                detail: "no container".into(),
                published: BTreeMap::new(),
            },
            Some(info) => {
                let probe = if info.is_running() {
                    engine::probe_once(
                        &service_plan.readiness,
                        info,
                        host,
                        password.trim_end(),
                        false,
                    )
                    .await
                    .map_err(|e| e.0)
                } else {
                    Err(format!("container is {}", info.state))
                };
                ServiceStatus {
                    service: instance,
                    container: name,
                    state: info.state.clone(),
                    ready: probe.is_ok(),
                    detail: probe.unwrap_or_else(|e| e),
                    published: published(info),
                }
            }
        };
        services.push(status);
    }
    let vehicle_containers = containers
        .iter()
        .filter(|c| c.service == VEHICLE_SERVICE)
        .map(|c| ServiceStatus {
            service: VEHICLE_SERVICE.into(),
            container: c.name.clone(),
            state: c.state.clone(),
            ready: c.is_running(),
            detail: String::new(),
            published: published(c),
        })
        .collect();
    let registry = super::members::view(ctx, &containers).await;
    Ok(assemble(ctx, services, vehicle_containers, registry, None).await)
}

/// The status from its parts, with the pipeline's figures when every service is ready.
async fn assemble(
    ctx: &Ctx,
    services: Vec<ServiceStatus>,
    vehicle_containers: Vec<ServiceStatus>,
    registry: super::members::RegistryView,
    swarm_nodes: Option<Vec<super::swarm_view::NodeStatus>>,
) -> Status {
    let host = ctx.host();
    let password_file = ctx.paths.state.join(crate::state::PASSWORD_FILE);
    let password = std::fs::read_to_string(&password_file).unwrap_or_default();
    let all_ready = services.iter().all(|s| s.ready);
    let (rows_stored, consumer_lag) = if all_ready {
        pipeline_figures(ctx, host, password.trim_end()).await
    } else {
        (None, None)
    };
    let c = &ctx.config;
    Status {
        stack: ctx.stack().to_owned(),
        events_url: ctx.events_url(),
        kafka_bootstrap: format!("{host}:{}", c.broker.host_port),
        postgres_url: format!(
            "postgresql://{}@{host}:{}/{}",
            c.postgres.user, c.postgres.host_port, c.postgres.database
        ),
        password_file: password_file.display().to_string(),
        services,
        vehicle_containers,
        rows_stored,
        consumer_lag,
        registry,
        all_ready,
        swarm_nodes,
    }
}

/// [`collect`] on a swarm: services and tasks per node, probed through their nodes' ports.
async fn collect_on_swarm(ctx: &Ctx) -> anyhow::Result<Status> {
    let password = std::fs::read_to_string(ctx.paths.state.join(crate::state::PASSWORD_FILE))
        .unwrap_or_default();
    let cluster = super::on_swarm::cluster(ctx, false).await?;
    let (services, vehicle_containers, tasks) =
        super::swarm_view::services(ctx, &cluster, password.trim_end()).await?;
    let running: Vec<crate::docker::ContainerInfo> = tasks
        .iter()
        .filter(|t| t.is_running())
        .map(|t| t.as_container())
        .collect();
    let registry = super::members::view(ctx, &running).await;
    let nodes = super::swarm_view::nodes(&cluster, &tasks).await?;
    Ok(assemble(ctx, services, vehicle_containers, registry, Some(nodes)).await)
}

/// Runs the command; returns whether every service is ready.
pub async fn run(ctx: &Ctx, json: bool) -> anyhow::Result<bool> {
    let status = collect(ctx).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(status.all_ready);
    }
    println!("stack {}", status.stack);
    println!("{:<16} {:<10} {:<6} detail", "service", "state", "ready");
    for s in &status.services {
        println!(
            "{:<16} {:<10} {:<6} {}",
            s.service,
            s.state,
            if s.ready { "yes" } else { "no" },
            s.detail
        );
    }
    let running = status.vehicle_containers.iter().filter(|v| v.ready).count();
    println!(
        "vehicles: {running}/{} container(s) running",
        status.vehicle_containers.len()
    );
    if let Some(rows) = status.rows_stored {
        println!("rows stored in diag: {rows}");
    }
    if let Some(lag) = &status.consumer_lag {
        let total: i64 = lag.iter().map(|p| p.lag).sum();
        let parts: Vec<String> = lag
            .iter()
            .map(|p| format!("p{}={}", p.partition, p.lag))
            .collect();
        println!("consumer lag: {total} ({})", parts.join(", "));
    }
    if let Some(nodes) = &status.swarm_nodes {
        println!("swarm nodes:");
        for n in nodes {
            println!(
                "  {:<12} {:<8} {:<7} {:<6} {} task(s): {}",
                n.name,
                n.role,
                n.availability,
                n.state,
                n.tasks.len(),
                n.tasks.join(", ")
            );
        }
    }
    print_registry(&status.registry);
    println!("events:   {}", status.events_url);
    println!("kafka:    {}", status.kafka_bootstrap);
    println!(
        "postgres: {} (password in {})",
        status.postgres_url, status.password_file
    );
    Ok(status.all_ready)
}

/// Live members per role next to the running containers, and every difference.
fn print_registry(registry: &super::members::RegistryView) {
    println!("registry (live members in ZooKeeper / containers running):");
    for r in &registry.roles {
        let runs: usize = r.live.iter().map(|m| m.info.runs.len()).sum();
        let runs = if r.role == fleet_registry::ROLE_VEHICLE {
            format!(", {runs} vehicle(s)")
        } else {
            String::new()
        };
        println!(
            "  {:<10} {}/{}{runs}",
            r.role,
            r.live.len(),
            r.running.len()
        );
    }
    for line in registry.differences() {
        println!("  DIFFERENCE {line}");
    }
}
