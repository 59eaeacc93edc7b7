//! The registry's live members next to the containers Docker reports: what `fleet status`
//! shows (and flags where they differ) and what `fleet verify` counts.

use std::collections::BTreeMap;

use fleet_common::wire::MemberInfo;
use serde::Serialize;

use super::Ctx;
use crate::docker::{ContainerInfo, Docker};
use crate::plan::VEHICLE_SERVICE;

/// One live member.
#[derive(Debug, Clone, Serialize)]
pub struct LiveMember {
    /// Its id (the container name).
    pub id: String,
    /// What its node holds: its in-network address and what it runs (VINs of a vehicle
    /// container), inline in the JSON.
    #[serde(flatten)]
    pub info: MemberInfo,
}

/// One role: live members and running containers.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    /// The role (`ingest`, `consumer`, `vehicle`).
    pub role: String,
    /// Members registered in ZooKeeper now.
    pub live: Vec<LiveMember>,
    /// Containers of the role that Docker reports running.
    pub running: Vec<String>,
    /// Running containers without a live member.
    pub not_registered: Vec<String>,
    /// Live members without a running container.
    pub not_running: Vec<String>,
}

/// The registry as `fleet status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryView {
    /// Why the registry could not be read, if it could not.
    pub error: Option<String>,
    /// Per role, in the registry's role order.
    pub roles: Vec<RoleView>,
}

impl RegistryView {
    /// The differences, one line each.
    pub fn differences(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.error.iter().cloned().collect();
        for r in &self.roles {
            lines.extend(
                r.not_registered
                    .iter()
                    .map(|c| format!("{}: container {c} runs but is not registered", r.role)),
            );
            lines.extend(r.not_running.iter().map(|m| {
                format!(
                    "{}: member {m} is registered but its container does not run",
                    r.role
                )
            }));
        }
        lines
    }
}

/// The Docker service label of a role's containers.
fn service_of(role: &str) -> &str {
    match role {
        fleet_registry::ROLE_VEHICLE => VEHICLE_SERVICE,
        other => other,
    }
}

/// The live members of the stack, by role (an error when ZooKeeper does not answer).
pub async fn live(ctx: &Ctx) -> anyhow::Result<BTreeMap<String, Vec<fleet_registry::Member>>> {
    let admin = super::config::admin(ctx).await?;
    Ok(admin.all_members().await?)
}

/// Compares the live members with `containers` (the stack's containers from Docker).
pub async fn view(ctx: &Ctx, containers: &[ContainerInfo]) -> RegistryView {
    let members = match live(ctx).await {
        Ok(members) => members,
        Err(e) => {
            return RegistryView {
                error: Some(format!("{e:#}")),
                roles: Vec::new(),
            };
        }
    };
    let roles = members
        .into_iter()
        .map(|(role, members)| {
            let running: Vec<String> = containers
                .iter()
                .filter(|c| c.service == service_of(&role) && c.is_running())
                .map(|c| c.name.clone())
                .collect();
            let live: Vec<LiveMember> = members
                .into_iter()
                .map(|m| LiveMember {
                    id: m.id,
                    info: m.info,
                })
                .collect();
            RoleView {
                not_registered: running
                    .iter()
                    .filter(|c| !live.iter().any(|m| &m.id == *c))
                    .cloned()
                    .collect(),
                not_running: live
                    .iter()
                    .filter(|m| !running.contains(&m.id))
                    .map(|m| m.id.clone())
                    .collect(),
                role,
                live,
                running,
            }
        })
        .collect();
    RegistryView { error: None, roles }
}

/// Vehicles launched: the sum of `VEHICLE_COUNT` over the stack's vehicle containers, running
/// or not (a crashed container's vehicles still count as launched).
pub async fn vehicles_launched(ctx: &Ctx, docker: &Docker) -> anyhow::Result<u64> {
    if ctx.swarm().is_some() {
        let cluster = super::on_swarm::cluster(ctx, false).await?;
        return super::swarm_view::vehicles_launched(ctx, &cluster).await;
    }
    let mut launched = 0;
    for container in docker
        .list_stack_containers(ctx.stack(), Some(VEHICLE_SERVICE))
        .await?
    {
        let env = docker.container_env(&container.name).await?;
        launched += env
            .get(fleet_common::settings::env::VEHICLE_COUNT)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(launched)
}

/// Vehicles live in the registry: the VINs registered by vehicle members.
pub async fn vehicles_live(ctx: &Ctx) -> anyhow::Result<u64> {
    let admin = super::config::admin(ctx).await?;
    let members = admin.members(fleet_registry::ROLE_VEHICLE).await?;
    Ok(members.iter().map(|m| m.info.runs.len() as u64).sum())
}

/// Waits up to `timeout` until the registry lists as many live vehicles as were launched
/// (members re-register within seconds after a ZooKeeper outage); returns (launched, live).
pub async fn vehicles_registered(
    ctx: &Ctx,
    docker: &Docker,
    timeout: std::time::Duration,
) -> anyhow::Result<(u64, u64)> {
    let started = std::time::Instant::now();
    loop {
        let launched = vehicles_launched(ctx, docker).await?;
        let live = vehicles_live(ctx).await;
        match live {
            Ok(live) if live == launched => return Ok((launched, live)),
            Ok(live) if started.elapsed() >= timeout => return Ok((launched, live)),
            Err(e) if started.elapsed() >= timeout => return Err(e),
            _ => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}
