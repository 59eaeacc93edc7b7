//! Putting back what a failed or interrupted `launch-infra` changed on a swarm, as the engine's
//! journal does on one engine. A launch records each change as it makes it; on failure:
//! - when the stack had no service on the swarm before, everything it owns now goes (services,
//!   secrets, overlay network, volumes on every node), as `fleet teardown` would;
//! - otherwise, newest change first: a service it created is removed (and its task containers
//!   waited for), a service it updated goes back to its previous spec (Swarm's own rollback), a
//!   secret or network it created is removed. Volumes of services that existed stay.

use std::sync::Mutex;

use bollard::query_parameters::{InspectServiceOptionsBuilder, UpdateServiceOptionsBuilder};

use super::cluster::Cluster;
use super::error::{SwarmError, api, is_not_found};
use super::teardown::{containers_gone, teardown};

/// One change a launch made on the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmChange {
    /// It created the stack's overlay network.
    CreatedNetwork(String),
    /// It created a secret (by id).
    CreatedSecret(String),
    /// It created a service.
    CreatedService {
        /// The service's name.
        name: String,
        /// Its `io.fleet.service` label, which its task containers carry.
        label: String,
    },
    /// It updated a service to a new spec.
    UpdatedService(String),
}

/// What a rollback did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SwarmUndone {
    /// Services, secrets, networks and volumes removed.
    pub removed: usize,
    /// Services put back to their previous spec.
    pub restored: usize,
    /// What could not be undone.
    pub errors: Vec<String>,
}

/// The changes of one launch on a swarm, shared by its concurrent service tasks.
#[derive(Debug)]
pub struct SwarmJournal {
    stack: String,
    /// Whether the stack had no service on the swarm when the launch began.
    first_launch: bool,
    changes: Mutex<Vec<SwarmChange>>,
}

impl SwarmJournal {
    /// An empty journal for `stack`; `first_launch` when the stack had no service yet.
    pub fn new(stack: &str, first_launch: bool) -> Self {
        Self {
            stack: stack.to_owned(),
            first_launch,
            changes: Mutex::new(Vec::new()),
        }
    }

    /// Records a change just made.
    pub fn record(&self, change: SwarmChange) {
        self.changes.lock().expect("journal lock").push(change);
    }

    /// The changes so far, oldest first.
    pub fn changes(&self) -> Vec<SwarmChange> {
        self.changes.lock().expect("journal lock").clone()
    }

    /// Undoes the recorded changes (see the module docs); keeps going past a failure.
    pub async fn rollback(&self, cluster: &Cluster) -> SwarmUndone {
        let mut undone = SwarmUndone::default();
        if self.first_launch {
            match teardown(cluster, &self.stack, None).await {
                Ok(r) => undone.removed = r.services + r.secrets + r.networks + r.volumes,
                Err(e) => undone.errors.push(e.to_string()),
            }
            return undone;
        }
        let changes = self.changes();
        // Services first (newest first), so that the secrets and network are no longer in use.
        for change in changes.iter().rev() {
            let result = match change {
                SwarmChange::CreatedService { name, label } => {
                    remove_service(cluster, &self.stack, name, label).await
                }
                SwarmChange::UpdatedService(name) => previous_spec(cluster, name).await,
                _ => continue,
            };
            match (result, change) {
                (Ok(()), SwarmChange::UpdatedService(_)) => undone.restored += 1,
                (Ok(()), _) => undone.removed += 1,
                (Err(e), _) => undone.errors.push(e.to_string()),
            }
        }
        for change in changes.iter().rev() {
            let result = match change {
                SwarmChange::CreatedSecret(id) => match cluster.manager().delete_secret(id).await {
                    Err(e) if !is_not_found(&e) => Err(api("remove secret", id)(e)),
                    _ => Ok(()),
                },
                SwarmChange::CreatedNetwork(name) => {
                    match cluster.manager().remove_network(name).await {
                        Err(e) if !is_not_found(&e) => Err(api("remove overlay network", name)(e)),
                        _ => Ok(()),
                    }
                }
                _ => continue,
            };
            match result {
                Ok(()) => undone.removed += 1,
                Err(e) => undone.errors.push(e.to_string()),
            }
        }
        undone
    }
}

/// Removes service `name` and waits until its task containers (label `label`) left every node.
async fn remove_service(
    cluster: &Cluster,
    stack: &str,
    name: &str,
    label: &str,
) -> Result<(), SwarmError> {
    match cluster.manager().delete_service(name).await {
        Err(e) if !is_not_found(&e) => return Err(api("remove service", name)(e)),
        _ => {}
    }
    let started = std::time::Instant::now();
    for node in &cluster.nodes {
        containers_gone(node, stack, Some(label), started).await?;
    }
    Ok(())
}

/// Puts service `name` back to the spec it had before the last update (Swarm's rollback).
async fn previous_spec(cluster: &Cluster, name: &str) -> Result<(), SwarmError> {
    let current = cluster
        .manager()
        .inspect_service(name, Some(InspectServiceOptionsBuilder::default().build()))
        .await
        .map_err(api("inspect service", name))?;
    let version = current.version.and_then(|v| v.index).unwrap_or(0);
    cluster
        .manager()
        .update_service(
            name,
            current.spec.unwrap_or_default(),
            UpdateServiceOptionsBuilder::default()
                .version(version as i32)
                .rollback("previous")
                .build(),
            None,
        )
        .await
        .map_err(api("roll back service", name))?;
    Ok(())
}
