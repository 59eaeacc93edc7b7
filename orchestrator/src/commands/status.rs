//! `fleet status [--json]`: each service's container state and readiness (probed now), the
//! published URLs and the vehicle containers.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Ctx;
use crate::engine;
use crate::plan::{self, Service, VEHICLE_SERVICE};

/// One service's status.
#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    /// Service name.
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
    /// Whether every infrastructure service is ready.
    pub all_ready: bool,
}

/// Collects the status.
pub async fn collect(ctx: &Ctx) -> anyhow::Result<Status> {
    let docker = ctx.docker().await?;
    let stack = ctx.stack();
    let host = engine::connect_host(&ctx.config.stack.bind_address);
    let password_file = ctx.paths.state.join(crate::state::PASSWORD_FILE);
    let password = std::fs::read_to_string(&password_file).unwrap_or_default();
    let containers = docker.list_stack_containers(stack, None).await?;
    let published = |info: &crate::docker::ContainerInfo| {
        info.ports
            .iter()
            .map(|(c, h)| (*c, format!("{host}:{h}")))
            .collect::<BTreeMap<_, _>>()
    };
    let mut services = Vec::new();
    for service in Service::ALL {
        let name = plan::container_name(stack, service.name());
        let status = match containers.iter().find(|c| c.name == name) {
            None => ServiceStatus {
                service: service.name().into(),
                container: name,
                state: "missing".into(),
                ready: false,
                detail: "no container".into(),
                published: BTreeMap::new(),
            },
            Some(info) => {
                let readiness = plan::readiness(&ctx.config, service);
                let probe = if info.is_running() {
                    engine::probe_once(&readiness, info, host, password.trim_end(), false)
                        .await
                        .map_err(|e| e.0)
                } else {
                    Err(format!("container is {}", info.state))
                };
                ServiceStatus {
                    service: service.name().into(),
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
    let all_ready = services.iter().all(|s| s.ready);
    let c = &ctx.config;
    Ok(Status {
        stack: stack.to_owned(),
        events_url: ctx.events_url(),
        kafka_bootstrap: format!("{host}:{}", c.broker.host_port),
        postgres_url: format!(
            "postgresql://{}@{host}:{}/{}",
            c.postgres.user, c.postgres.host_port, c.postgres.database
        ),
        password_file: password_file.display().to_string(),
        services,
        vehicle_containers,
        all_ready,
    })
}

/// Runs the command; returns whether every service is ready.
pub async fn run(ctx: &Ctx, json: bool) -> anyhow::Result<bool> {
    let status = collect(ctx).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(status.all_ready);
    }
    println!("stack {}", status.stack);
    println!("{:<12} {:<10} {:<6} detail", "service", "state", "ready");
    for s in &status.services {
        println!(
            "{:<12} {:<10} {:<6} {}",
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
    println!("events:   {}", status.events_url);
    println!("kafka:    {}", status.kafka_bootstrap);
    println!(
        "postgres: {} (password in {})",
        status.postgres_url, status.password_file
    );
    Ok(status.all_ready)
}
