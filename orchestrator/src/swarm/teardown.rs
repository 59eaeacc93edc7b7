//! Removing what a stack owns on a swarm, selected by its label only: its services (the vehicle
//! service alone with `--fleet-only`), then, once their task containers are gone from every
//! node, its secrets, its overlay network and its volumes on every node. The swarm itself (its
//! membership) is not the stack's and stays.

use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListSecretsOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use super::cluster::{Cluster, NodeHandle};
use super::error::{SwarmError, api, is_not_found};
use super::tasks::stack_services;
use crate::docker::stack_filter;

/// How long the swarm may take to stop a removed service's task containers before fleet
/// removes them itself.
const TASKS_GONE: Duration = Duration::from_secs(60);

/// What was removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Services.
    pub services: usize,
    /// Task containers removed by fleet after the swarm's grace.
    pub containers: usize,
    /// Secrets.
    pub secrets: usize,
    /// Networks.
    pub networks: usize,
    /// Volumes, on all nodes.
    pub volumes: usize,
}

/// Removes the stack's services (only `service`'s, if given) and waits for their containers to
/// leave every node; without `service`, also its secrets, networks and volumes.
pub async fn teardown(
    cluster: &Cluster,
    stack: &str,
    service: Option<&str>,
) -> Result<Removed, SwarmError> {
    let mut removed = Removed::default();
    for s in stack_services(cluster, stack, service).await? {
        let Some(id) = s.id else { continue };
        match cluster.manager().delete_service(&id).await {
            Ok(()) => removed.services += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api("remove service", &id)(e)),
        }
    }
    let started = Instant::now();
    for node in &cluster.nodes {
        removed.containers += containers_gone(node, stack, service, started).await?;
    }
    if service.is_some() {
        return Ok(removed);
    }
    let secrets = cluster
        .manager()
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default()
                .filters(&stack_filter(stack, None))
                .build(),
        ))
        .await
        .map_err(api("list the secrets of stack", stack))?;
    for secret in secrets {
        let Some(id) = secret.id else { continue };
        cluster
            .manager()
            .delete_secret(&id)
            .await
            .map_err(api("remove secret", &id))?;
        removed.secrets += 1;
    }
    // The overlay network from a manager; a worker's copy goes with it. Networks of a node's
    // own scope (none today) from the node.
    for (i, node) in cluster.nodes.iter().enumerate() {
        removed.networks += remove_networks(node, stack, i == 0).await?;
    }
    for node in &cluster.nodes {
        removed.volumes += remove_volumes(node, stack).await?;
    }
    Ok(removed)
}

/// Waits until `node` runs no container of the stack (of `service`); past [`TASKS_GONE`] since
/// `started`, removes what is left. Returns how many fleet removed itself.
pub(super) async fn containers_gone(
    node: &NodeHandle,
    stack: &str,
    service: Option<&str>,
    started: Instant,
) -> Result<usize, SwarmError> {
    let name = &node.config.name;
    loop {
        let left = node
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&stack_filter(stack, service))
                    .build(),
            ))
            .await
            .map_err(api("list the stack's containers on node", name))?;
        if left.is_empty() {
            return Ok(0);
        }
        if started.elapsed() > TASKS_GONE {
            let mut count = 0;
            for c in left {
                let Some(id) = c.id else { continue };
                match node
                    .docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                    )
                    .await
                {
                    Ok(()) => count += 1,
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(api("remove container on node", name)(e)),
                }
            }
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Removes the stack's networks that `node` lists: swarm-scoped ones only from the `manager`.
async fn remove_networks(
    node: &NodeHandle,
    stack: &str,
    manager: bool,
) -> Result<usize, SwarmError> {
    let name = &node.config.name;
    let networks = node
        .docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&stack_filter(stack, None))
                .build(),
        ))
        .await
        .map_err(api("list the stack's networks on node", name))?;
    let mut count = 0;
    for network in networks {
        if !manager && network.scope.as_deref() == Some("swarm") {
            continue;
        }
        let Some(id) = network.id else { continue };
        match node.docker.remove_network(&id).await {
            Ok(()) => count += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api("remove network on node", name)(e)),
        }
    }
    Ok(count)
}

/// Removes the stack's volumes on `node`.
async fn remove_volumes(node: &NodeHandle, stack: &str) -> Result<usize, SwarmError> {
    let name = &node.config.name;
    let volumes = node
        .docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&stack_filter(stack, None))
                .build(),
        ))
        .await
        .map_err(api("list the stack's volumes on node", name))?
        .volumes
        .unwrap_or_default();
    let mut count = 0;
    for volume in volumes {
        node.docker
            .remove_volume(
                &volume.name,
                Some(RemoveVolumeOptionsBuilder::default().build()),
            )
            .await
            .map_err(api("remove volume on node", name))?;
        count += 1;
    }
    Ok(count)
}
