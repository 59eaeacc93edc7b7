//! The swarm's nodes as `[target.swarm]` lists them: every node's engine connected, the swarm
//! initialised on the first node (a manager) when its engine is in none, the other nodes
//! joined with their role, and the configured labels set on each node. Commands other than
//! `launch-infra` attach to the swarm as it is and never change its membership.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use bollard::models::{LocalNodeState, NodeSpec, SwarmInfo, SwarmInitRequest, SwarmJoinRequest};
use bollard::query_parameters::UpdateNodeOptionsBuilder;
use fleet_common::config::{NodeRole, SwarmConfig, SwarmNodeConfig};
use futures::future::try_join_all;

use super::error::{SwarmError, api};
use crate::docker::connect::connect_engine;

/// The swarm's control port.
const SWARM_PORT: u16 = 2377;

/// One node: its config, its engine, its swarm id.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    /// The node as configured.
    pub config: SwarmNodeConfig,
    /// Its engine.
    pub docker: bollard::Docker,
    /// Its swarm node id (empty while it is in no swarm).
    pub id: String,
    /// Where the host reaches the ports its tasks publish.
    pub address: IpAddr,
}

/// The configured nodes of the swarm.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Every node, in config order; the first is a manager.
    pub nodes: Vec<NodeHandle>,
    /// Index of the stateful node.
    pub stateful: usize,
}

impl Cluster {
    /// Connects to every node's engine (relative TLS and key paths from `base`).
    pub async fn connect(swarm: &SwarmConfig, base: &Path) -> Result<Self, SwarmError> {
        let nodes = try_join_all(swarm.nodes.iter().map(|node| async move {
            let docker =
                connect_engine(&node.engine, base)
                    .await
                    .map_err(|source| SwarmError::Engine {
                        node: node.name.clone(),
                        source,
                    })?;
            let address = node.address.parse().map_err(|_| SwarmError::State {
                node: node.name.clone(),
                message: format!("address {:?} is not an IP address", node.address),
            })?;
            let id = node_id(&docker, &node.name).await?.unwrap_or_default();
            Ok::<_, SwarmError>(NodeHandle {
                config: node.clone(),
                docker,
                id,
                address,
            })
        }))
        .await?;
        let stateful = nodes
            .iter()
            .position(|n| n.config.name == swarm.stateful_node)
            .unwrap_or(0);
        Ok(Self { nodes, stateful })
    }

    /// Connects and checks that every node is in the swarm (for commands that use it as it is).
    pub async fn attach(swarm: &SwarmConfig, base: &Path) -> Result<Self, SwarmError> {
        let cluster = Self::connect(swarm, base).await?;
        if let Some(node) = cluster.nodes.iter().find(|n| n.id.is_empty()) {
            return Err(SwarmError::State {
                node: node.config.name.clone(),
                message: "is in no swarm: run `fleet launch-infra` first".into(),
            });
        }
        Ok(cluster)
    }

    /// The first node's engine: a manager, which every swarm-wide call goes to.
    pub fn manager(&self) -> &bollard::Docker {
        &self.nodes[0].docker
    }

    /// The stateful node.
    pub fn stateful(&self) -> &NodeHandle {
        &self.nodes[self.stateful]
    }

    /// The node with swarm id `id`.
    pub fn node(&self, id: &str) -> Option<&NodeHandle> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Initialises the swarm on the first node when it is in none, joins every other node
    /// that is in none, refuses a node in another swarm, and sets the configured labels.
    /// Returns what it did, one line per change.
    pub async fn form(&mut self) -> Result<Vec<String>, SwarmError> {
        let mut done = Vec::new();
        let first = self.nodes[0].clone();
        let state = local_state(&first.docker, &first.config.name).await?;
        if state == LocalNodeState::INACTIVE {
            first
                .docker
                .init_swarm(SwarmInitRequest {
                    listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                    advertise_addr: Some(first.address.to_string()),
                    ..Default::default()
                })
                .await
                .map_err(api("initialise the swarm on node", &first.config.name))?;
            done.push(format!("initialised the swarm on {}", first.config.name));
        } else if state != LocalNodeState::ACTIVE {
            return Err(SwarmError::State {
                node: first.config.name.clone(),
                message: format!("its swarm state is {state}"),
            });
        }
        let swarm = first
            .docker
            .inspect_swarm()
            .await
            .map_err(api("inspect the swarm on node", &first.config.name))?;
        let cluster_id = swarm.id.unwrap_or_default();
        let tokens = swarm.join_tokens.unwrap_or_default();
        for node in &self.nodes[1..] {
            match local_state(&node.docker, &node.config.name).await? {
                LocalNodeState::INACTIVE => {
                    let token = match node.config.role {
                        NodeRole::Manager => tokens.manager.clone(),
                        NodeRole::Worker => tokens.worker.clone(),
                    };
                    node.docker
                        .join_swarm(SwarmJoinRequest {
                            listen_addr: Some(format!("0.0.0.0:{SWARM_PORT}")),
                            advertise_addr: Some(node.address.to_string()),
                            remote_addrs: Some(vec![format!("{}:{SWARM_PORT}", first.address)]),
                            join_token: token,
                            ..Default::default()
                        })
                        .await
                        .map_err(api("join the swarm with node", &node.config.name))?;
                    done.push(format!(
                        "joined {} as a {}",
                        node.config.name,
                        role_word(node.config.role)
                    ));
                }
                LocalNodeState::ACTIVE => {
                    // A manager knows its swarm's id; a worker only its own node id, which the
                    // first node's swarm lists when it is the same swarm.
                    let theirs = cluster_of(&node.docker, &node.config.name).await?;
                    let id = node_id(&node.docker, &node.config.name).await?;
                    let same = if theirs.is_empty() {
                        match id {
                            Some(id) => first.docker.inspect_node(&id).await.is_ok(),
                            None => false,
                        }
                    } else {
                        theirs == cluster_id
                    };
                    if !same {
                        return Err(SwarmError::OtherSwarm {
                            node: node.config.name.clone(),
                            cluster: if theirs.is_empty() {
                                "a swarm this one does not list".to_owned()
                            } else {
                                theirs
                            },
                        });
                    }
                }
                other => {
                    return Err(SwarmError::State {
                        node: node.config.name.clone(),
                        message: format!("its swarm state is {other}"),
                    });
                }
            }
        }
        for node in &mut self.nodes {
            node.id = node_id(&node.docker, &node.config.name)
                .await?
                .ok_or_else(|| SwarmError::State {
                    node: node.config.name.clone(),
                    message: "has no swarm node id after joining".into(),
                })?;
        }
        done.extend(self.set_labels().await?);
        Ok(done)
    }

    /// Sets each node's configured labels (keeping labels set by others).
    async fn set_labels(&self) -> Result<Vec<String>, SwarmError> {
        let mut done = Vec::new();
        for node in self.nodes.iter().filter(|n| !n.config.labels.is_empty()) {
            let current = self
                .manager()
                .inspect_node(&node.id)
                .await
                .map_err(api("inspect swarm node", &node.config.name))?;
            let mut spec: NodeSpec = current.spec.unwrap_or_default();
            let mut labels: HashMap<String, String> = spec.labels.take().unwrap_or_default();
            let before = labels.clone();
            labels.extend(node.config.labels.clone());
            if labels == before {
                continue;
            }
            spec.labels = Some(labels);
            let version = current.version.and_then(|v| v.index).unwrap_or(0);
            self.manager()
                .update_node(
                    &node.id,
                    spec,
                    UpdateNodeOptionsBuilder::default()
                        .version(version as i64)
                        .build(),
                )
                .await
                .map_err(api("label swarm node", &node.config.name))?;
            done.push(format!("labelled {}", node.config.name));
        }
        Ok(done)
    }
}

fn role_word(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    }
}

/// The engine's view of its swarm membership.
async fn swarm_info(docker: &bollard::Docker, node: &str) -> Result<SwarmInfo, SwarmError> {
    let info = docker
        .info()
        .await
        .map_err(api("read the engine info of node", node))?;
    Ok(info.swarm.unwrap_or_default())
}

async fn local_state(docker: &bollard::Docker, node: &str) -> Result<LocalNodeState, SwarmError> {
    Ok(swarm_info(docker, node)
        .await?
        .local_node_state
        .unwrap_or(LocalNodeState::INACTIVE))
}

async fn cluster_of(docker: &bollard::Docker, node: &str) -> Result<String, SwarmError> {
    Ok(swarm_info(docker, node)
        .await?
        .cluster
        .and_then(|c| c.id)
        .unwrap_or_default())
}

/// The node's swarm id, when its engine is in a swarm.
async fn node_id(docker: &bollard::Docker, node: &str) -> Result<Option<String>, SwarmError> {
    let info = swarm_info(docker, node).await?;
    Ok(Some(info)
        .filter(|s| s.local_node_state == Some(LocalNodeState::ACTIVE))
        .and_then(|s| s.node_id)
        .filter(|id| !id.is_empty()))
}
