//! The stack's services and their tasks as the swarm reports them: where each task runs, its
//! state, and the host ports it publishes on its node (ports published in `host` mode, the
//! engine's pick when the plan asked for none).

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};

use super::cluster::Cluster;
use super::error::{SwarmError, api};
use super::translate::{LABEL_PER_SLOT, LABEL_TASK_HASH};
use crate::docker::{ContainerInfo, LABEL_SERVICE, stack_filter};

/// One task of a stack service.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// The Swarm service's name.
    pub service_name: String,
    /// Its `io.fleet.service` label.
    pub service: String,
    /// The instance: the service's name, or `<service>-<slot>` for a service whose tasks are
    /// known by their slot (the vehicles); also its registry member id.
    pub instance: String,
    /// Its slot.
    pub slot: i64,
    /// fleet's name of the node it is on (the swarm id when the node is not configured).
    pub node: String,
    /// Where the host reaches the node.
    pub address: Option<IpAddr>,
    /// The task's state: running, starting, failed, shutdown, ...
    pub state: String,
    /// The state the swarm wants it in.
    pub desired: String,
    /// Published ports: container port to host port on its node.
    pub ports: HashMap<u16, u16>,
    /// The swarm's message or error for the task.
    pub message: String,
    /// The `io.fleet.task-hash` of the spec the task was started from.
    pub task_hash: String,
}

impl TaskView {
    /// Whether it runs and should.
    pub fn is_running(&self) -> bool {
        self.state == "running" && self.desired == "running"
    }

    /// Whether the swarm still wants it (desired running), whatever its state.
    pub fn is_current(&self) -> bool {
        self.desired == "running"
    }

    /// The task as the engine code's container view (for the shared readiness probes).
    pub fn as_container(&self) -> ContainerInfo {
        ContainerInfo {
            id: String::new(),
            name: self.instance.clone(),
            service: self.service.clone(),
            config_hash: self.task_hash.clone(),
            state: self.state.clone(),
            ports: self.ports.clone(),
        }
    }
}

/// The stack's services, optionally only those with `io.fleet.service = service`.
pub async fn stack_services(
    cluster: &Cluster,
    stack: &str,
    service: Option<&str>,
) -> Result<Vec<Service>, SwarmError> {
    cluster
        .manager()
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&stack_filter(stack, service))
                .build(),
        ))
        .await
        .map_err(api("list the services of stack", stack))
}

/// Every task of the stack's services (of `service` only, if given), newest first per slot.
pub async fn stack_tasks(
    cluster: &Cluster,
    stack: &str,
    service: Option<&str>,
) -> Result<Vec<TaskView>, SwarmError> {
    let services = stack_services(cluster, stack, service).await?;
    let mut views = Vec::new();
    for s in &services {
        let Some(name) = s.spec.as_ref().and_then(|spec| spec.name.clone()) else {
            continue;
        };
        let tasks = cluster
            .manager()
            .list_tasks(Some(
                ListTasksOptionsBuilder::default()
                    .filters(&HashMap::from([("service".to_owned(), vec![name.clone()])]))
                    .build(),
            ))
            .await
            .map_err(api("list the tasks of service", &name))?;
        let mut tasks: Vec<Task> = tasks;
        tasks.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        views.extend(tasks.iter().map(|t| view(cluster, s, &name, t)));
    }
    Ok(views)
}

fn view(cluster: &Cluster, service: &Service, name: &str, task: &Task) -> TaskView {
    let labels = service
        .spec
        .as_ref()
        .and_then(|s| s.labels.clone())
        .unwrap_or_default();
    let slot = task.slot.unwrap_or(0);
    let per_slot = labels.get(LABEL_PER_SLOT).is_some_and(|v| v == "true");
    let node_id = task.node_id.clone().unwrap_or_default();
    let node = cluster.node(&node_id);
    let status = task.status.clone().unwrap_or_default();
    let ports = status
        .port_status
        .and_then(|p| p.ports)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.target_port? as u16, p.published_port? as u16)))
        .collect();
    let word = |s: Option<TaskState>| s.map(|s| s.to_string()).unwrap_or_default();
    TaskView {
        service_name: name.to_owned(),
        service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
        instance: if per_slot {
            format!("{name}-{slot}")
        } else {
            name.to_owned()
        },
        slot,
        node: node.map_or(node_id.clone(), |n| n.config.name.clone()),
        address: node.map(|n| n.address),
        state: word(status.state),
        desired: word(task.desired_state),
        ports,
        message: [status.message, status.err]
            .into_iter()
            .flatten()
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(": "),
        task_hash: task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_TASK_HASH))
            .cloned()
            .unwrap_or_default(),
    }
}
