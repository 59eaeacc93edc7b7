//! Applying Swarm services: the stack's attachable overlay network, its secrets, each service
//! created or updated to its spec (kept when its config hash matches), and the wait until its
//! tasks run and its readiness probe passes through the ports its task publishes on its node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bollard::models::{NetworkCreateRequest, SecretSpec};
use bollard::query_parameters::{
    InspectServiceOptionsBuilder, ListNetworksOptionsBuilder, ListSecretsOptionsBuilder,
    LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use futures::StreamExt;

use super::cluster::Cluster;
use super::error::{SwarmError, api, is_not_found};
use super::tasks::{TaskView, stack_tasks};
use super::translate::{SecretData, SwarmService};
use crate::docker::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK};
use crate::engine::{LOG_LINES_ON_FAILURE, probe_once};

/// What applying a service did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It did not exist.
    Created,
    /// Its spec changed.
    Updated,
    /// It matched its spec.
    Kept,
}

impl Applied {
    /// A word for progress lines.
    pub fn word(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Kept => "kept",
        }
    }
}

fn owned_labels(stack: &str, service: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_STACK.to_owned(), stack.to_owned()),
        (LABEL_SERVICE.to_owned(), service.to_owned()),
    ])
}

/// Creates the stack's attachable overlay network unless it exists; true when created.
pub async fn ensure_network(
    cluster: &Cluster,
    name: &str,
    stack: &str,
) -> Result<bool, SwarmError> {
    let existing = cluster
        .manager()
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&HashMap::from([("name".to_owned(), vec![name.to_owned()])]))
                .build(),
        ))
        .await
        .map_err(api("list networks named", name))?;
    if let Some(network) = existing.iter().find(|n| n.name.as_deref() == Some(name)) {
        let ours = network
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_STACK))
            .is_some_and(|s| s == stack);
        if !ours || network.driver.as_deref() != Some("overlay") {
            return Err(SwarmError::NotOwned {
                kind: "overlay network",
                name: name.to_owned(),
                label: LABEL_STACK,
                stack: stack.to_owned(),
            });
        }
        return Ok(false);
    }
    cluster
        .manager()
        .create_network(NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(owned_labels(stack, "network")),
            ..Default::default()
        })
        .await
        .map_err(api("create overlay network", name))?;
    Ok(true)
}

/// The stack's secrets on the swarm.
#[derive(Debug, Default)]
pub struct EnsuredSecrets {
    /// Secret name to id, for every secret asked for.
    pub ids: HashMap<String, String>,
    /// The ids of the secrets this call created.
    pub created: Vec<String>,
}

/// Creates each secret unless it exists (names are content-addressed).
pub async fn ensure_secrets(
    cluster: &Cluster,
    stack: &str,
    secrets: &[&SecretData],
) -> Result<EnsuredSecrets, SwarmError> {
    let existing = cluster
        .manager()
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default()
                .filters(&crate::docker::stack_filter(stack, None))
                .build(),
        ))
        .await
        .map_err(api("list the secrets of stack", stack))?;
    let mut ids: HashMap<String, String> = existing
        .into_iter()
        .filter_map(|s| Some((s.spec?.name?, s.id?)))
        .collect();
    let mut created_ids = Vec::new();
    for secret in secrets {
        if ids.contains_key(&secret.name) {
            continue;
        }
        use base64::Engine as _;
        let created = cluster
            .manager()
            .create_secret(SecretSpec {
                name: Some(secret.name.clone()),
                labels: Some(owned_labels(stack, "secret")),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&secret.content)),
                ..Default::default()
            })
            .await
            .map_err(api("create secret", &secret.name))?;
        created_ids.push(created.id.clone());
        ids.insert(secret.name.clone(), created.id);
    }
    Ok(EnsuredSecrets {
        ids,
        created: created_ids,
    })
}

/// Creates `s` or updates it to its spec (secret ids from `secret_ids`); keeps it when its
/// config hash matches.
pub async fn apply_service(
    cluster: &Cluster,
    stack: &str,
    s: &SwarmService,
    secret_ids: &HashMap<String, String>,
) -> Result<Applied, SwarmError> {
    let mut spec = s.spec.clone();
    if let Some(refs) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
        .and_then(|c| c.secrets.as_mut())
    {
        for r in refs {
            r.secret_id = r
                .secret_name
                .as_ref()
                .and_then(|n| secret_ids.get(n))
                .cloned();
        }
    }
    let current = match cluster
        .manager()
        .inspect_service(
            &s.name,
            Some(InspectServiceOptionsBuilder::default().build()),
        )
        .await
    {
        Ok(current) => Some(current),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(api("inspect service", &s.name)(e)),
    };
    let Some(current) = current else {
        cluster
            .manager()
            .create_service(spec, None)
            .await
            .map_err(api("create service", &s.name))?;
        return Ok(Applied::Created);
    };
    let labels = current
        .spec
        .as_ref()
        .and_then(|sp| sp.labels.clone())
        .unwrap_or_default();
    if labels.get(LABEL_STACK).map(String::as_str) != Some(stack) {
        return Err(SwarmError::NotOwned {
            kind: "service",
            name: s.name.clone(),
            label: LABEL_STACK,
            stack: stack.to_owned(),
        });
    }
    if labels.get(LABEL_CONFIG_HASH).map(String::as_str) == Some(s.config_hash()) {
        return Ok(Applied::Kept);
    }
    let version = current.version.and_then(|v| v.index).unwrap_or(0);
    cluster
        .manager()
        .update_service(
            &s.name,
            spec,
            UpdateServiceOptionsBuilder::default()
                .version(version as i32)
                .build(),
            None,
        )
        .await
        .map_err(api("update service", &s.name))?;
    Ok(Applied::Updated)
}

/// A service that did not become ready.
#[derive(Debug, thiserror::Error)]
#[error(
    "service {service} is not ready: {probe}: {last_error}\n--- last {LOG_LINES_ON_FAILURE} log lines of service {service} ---\n{logs}"
)]
pub struct NotReady {
    /// The service.
    pub service: String,
    /// The probe.
    pub probe: String,
    /// The last complaint (task state and message, or the probe's).
    pub last_error: String,
    /// The service's last log lines.
    pub logs: String,
}

/// Waits until `s` has as many running tasks of its current spec as it wants and, if it has a
/// probe, the probe passes against one running task (each task, when `every_task`), with
/// `setup` (topics, schema) on the first pass. Returns the probe's report.
pub async fn wait_ready(
    cluster: &Cluster,
    stack: &str,
    s: &SwarmService,
    password: &str,
    setup: bool,
) -> Result<String, NotReady> {
    let started = Instant::now();
    let mut last_error: String;
    loop {
        match stack_tasks(cluster, stack, None).await {
            Err(e) => last_error = e.to_string(),
            Ok(tasks) => {
                let current: Vec<&TaskView> = tasks
                    .iter()
                    .filter(|t| t.service_name == s.name && t.is_current())
                    .filter(|t| t.task_hash == s.task_hash())
                    .collect();
                let running: Vec<&&TaskView> = current.iter().filter(|t| t.is_running()).collect();
                if running.len() as u64 >= s.replicas {
                    match probe_tasks(s, &running, password, setup).await {
                        Ok(report) => return Ok(report),
                        Err(e) => last_error = e,
                    }
                } else {
                    // The tasks on their way, or else the newest one that ended (its error).
                    let starting: Vec<&TaskView> = current
                        .iter()
                        .copied()
                        .filter(|t| !t.is_running())
                        .collect();
                    let ended = tasks
                        .iter()
                        .find(|t| t.service_name == s.name && !t.is_current());
                    let shown = if starting.is_empty() {
                        ended.into_iter().collect()
                    } else {
                        starting
                    };
                    last_error = format!(
                        "{}/{} task(s) running{}",
                        running.len(),
                        s.replicas,
                        shown
                            .iter()
                            .map(|t| format!(
                                "; {} on {}: {} {}",
                                t.instance, t.node, t.state, t.message
                            ))
                            .collect::<String>()
                    );
                }
            }
        }
        if started.elapsed() > s.timeout {
            last_error = format!("{last_error} (gave up after {:?})", s.timeout);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(NotReady {
        service: s.name.clone(),
        probe: s
            .readiness
            .as_ref()
            .map_or("tasks running".to_owned(), |r| r.describe()),
        last_error,
        logs: service_logs_tail(cluster, &s.name, LOG_LINES_ON_FAILURE).await,
    })
}

async fn probe_tasks(
    s: &SwarmService,
    running: &[&&TaskView],
    password: &str,
    setup: bool,
) -> Result<String, String> {
    let Some(readiness) = &s.readiness else {
        return Ok(format!("{} task(s) running", running.len()));
    };
    let task = running.first().ok_or("no running task")?;
    let host: IpAddr = task.address.ok_or_else(|| {
        format!(
            "task {} runs on node {}, which is not configured",
            task.instance, task.node
        )
    })?;
    let report = probe_once(readiness, &task.as_container(), host, password, setup)
        .await
        .map_err(|e| format!("{} on {}: {}", task.instance, task.node, e.0))?;
    Ok(format!("{report} (on {})", task.node))
}

/// The last `lines` lines of a service's output (every task), or why they are unavailable.
pub async fn service_logs_tail(cluster: &Cluster, service: &str, lines: usize) -> String {
    let mut stream = cluster.manager().service_logs(
        service,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .tail(&lines.to_string())
                .build(),
        ),
    );
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => out.push_str(&chunk.to_string()),
            Err(e) => {
                out.push_str(&format!("(logs unavailable: {e})"));
                break;
            }
        }
    }
    out
}
