//! The plan's containers as Swarm service specs, as plain data (unit-tested, no engine).
//!
//! Every container of the infrastructure plan becomes a service of one task under the same
//! name, so names, aliases, environments and per-replica identities (the consumer's replica
//! index) stay what the plan says. The vehicles become one service whose replica count is the
//! number of vehicle containers; each task takes its identity from its slot (Swarm template
//! `{{.Task.Slot}}`): its first vehicle index (hence its VINs) and its registry member id.
//!
//! The translation follows what this kernel and Swarm allow: endpoint mode `dnsrr` (no IPVS
//! needed; the service name resolves to its tasks), ports published in `host` mode on the node
//! that runs the task, files handed over as Swarm secrets (never environment variables),
//! named volumes for data on the pinned node, and the container's lock-down (read-only root,
//! no capabilities, tmpfs scratch space, memory and process limits, an init process).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Limit, NetworkAttachmentConfig, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use fleet_common::settings::env;
use sha2::{Digest, Sha256};

use super::mounts;
pub use super::mounts::{SecretData, secret_name};
use crate::docker::{ContainerSpec, LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK, hex_digest};
use crate::plan::{InfraPlan, PINNED, Readiness, Service};

/// Label on a service whose tasks are known by their slot (`<service>-<slot>`).
pub const LABEL_PER_SLOT: &str = "io.fleet.per-slot";

/// Label on a service's task containers: the hash of the task template and its secrets. A task
/// carries the value of the spec it was started from, so after an update the tasks of the new
/// spec can be told from the old ones still running; a change of replica count alone keeps it.
pub const LABEL_TASK_HASH: &str = "io.fleet.task-hash";

/// Where tasks may run.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Swarm node id of the stateful node.
    pub stateful_node_id: String,
    /// Constraints of the spread services (`target.swarm.spread_constraints`).
    pub spread_constraints: Vec<String>,
    /// How long a stopping task may drain.
    pub stop_grace: Duration,
}

/// One Swarm service of the stack.
#[derive(Debug, Clone)]
pub struct SwarmService {
    /// Service name (also its DNS name on the stack network).
    pub name: String,
    /// The plan's service; `None` for the vehicles.
    pub service: Option<Service>,
    /// The spec to create or update, labelled with its config hash.
    pub spec: ServiceSpec,
    /// The secrets its tasks mount.
    pub secrets: Vec<SecretData>,
    /// Whether it stays on the stateful node.
    pub pinned: bool,
    /// Desired tasks.
    pub replicas: u64,
    /// How its readiness is checked (`None`: tasks running).
    pub readiness: Option<Readiness>,
    /// Services that must be ready first.
    pub depends_on: Vec<Service>,
    /// How long readiness may take.
    pub timeout: Duration,
}

impl SwarmService {
    /// Its `io.fleet.service` label, which its task containers carry too.
    pub fn label(&self) -> &str {
        self.spec
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVICE))
            .map_or("", String::as_str)
    }

    /// The `io.fleet.config-hash` label of its spec.
    pub fn config_hash(&self) -> &str {
        self.spec
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CONFIG_HASH))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The `io.fleet.task-hash` label its tasks carry.
    pub fn task_hash(&self) -> &str {
        self.spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_TASK_HASH))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// The infrastructure services: one per container of `plan`.
pub fn infra_services(plan: &InfraPlan, placement: &Placement) -> Vec<SwarmService> {
    plan.services
        .iter()
        .map(|s| {
            // A data volume ties a service to the node that holds it.
            let has_data = s
                .spec
                .volumes
                .values()
                .any(|target| !target.starts_with(mounts::SECRETS_DIR));
            let pinned = PINNED.contains(&s.service) || has_data;
            let (spec, secrets) = service_spec(&s.spec, 1, false, pinned, placement);
            SwarmService {
                name: s.spec.name.clone(),
                service: Some(s.service),
                spec,
                secrets,
                pinned,
                replicas: 1,
                readiness: Some(s.readiness.clone()),
                depends_on: s.depends_on.clone(),
                timeout: s.timeout,
            }
        })
        .collect()
}

/// The vehicle service: `containers` tasks of `per_container` vehicles, from the first spec of
/// [`crate::plan::fleet_plan`] (every container's spec differs only in name and identity).
/// Task `s` simulates the vehicles `s * 10^d ..` (`10^d >= per_container`), so the tasks' VINs
/// never overlap and a task that moves to another node keeps its vehicles.
pub fn vehicle_service(
    first: &ContainerSpec,
    stack: &str,
    containers: u32,
    per_container: u32,
    placement: &Placement,
) -> SwarmService {
    let mut spec = first.clone();
    spec.name = crate::plan::container_name(stack, crate::plan::VEHICLE_SERVICE);
    let digits = per_container.max(1).to_string().len();
    let block = format!("{{{{.Task.Slot}}}}{}", "0".repeat(digits));
    // Swarm templates in place of the per-container values of `VehicleSettings` and
    // `RegistrySettings`.
    spec.env
        .insert(env::VEHICLE_COUNT.into(), per_container.to_string());
    spec.env.insert(env::VEHICLE_FIRST_INDEX.into(), block);
    spec.env.insert(
        env::REGISTRY_MEMBER_ID.into(),
        "{{.Service.Name}}-{{.Task.Slot}}".into(),
    );
    spec.env.insert(
        env::REGISTRY_ADDRESS.into(),
        format!("http://{{{{.Task.Name}}}}:{}", crate::plan::VEHICLE_PORT),
    );
    let (service_spec, secrets) =
        service_spec(&spec, u64::from(containers), true, false, placement);
    SwarmService {
        name: spec.name,
        service: None,
        spec: service_spec,
        secrets,
        pinned: false,
        replicas: u64::from(containers),
        readiness: None,
        depends_on: vec![Service::Ingest],
        timeout: Duration::from_secs(60),
    }
}

/// The Swarm spec of `c` with `replicas` tasks; `per_slot` names each task's host after its
/// slot. Returns the secrets it mounts.
fn service_spec(
    c: &ContainerSpec,
    replicas: u64,
    per_slot: bool,
    pinned: bool,
    placement: &Placement,
) -> (ServiceSpec, Vec<SecretData>) {
    let mut labels = HashMap::from([
        (LABEL_STACK.to_owned(), c.stack.clone()),
        (LABEL_SERVICE.to_owned(), c.service.clone()),
    ]);
    if per_slot {
        labels.insert(LABEL_PER_SLOT.to_owned(), "true".to_owned());
    }
    let mounts = mounts::mounts(c);
    let (secrets, secret_refs) = mounts::secrets(c);
    let container = TaskSpecContainerSpec {
        image: Some(c.image.clone()),
        labels: Some(labels.clone()),
        args: (!c.cmd.is_empty()).then(|| c.cmd.clone()),
        hostname: Some(if per_slot {
            "{{.Service.Name}}-{{.Task.Slot}}".to_owned()
        } else {
            c.name.clone()
        }),
        env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        read_only: Some(c.hardening.read_only),
        mounts: Some(mounts),
        stop_grace_period: Some(placement.stop_grace.as_nanos() as i64),
        secrets: (!secret_refs.is_empty()).then_some(secret_refs),
        init: Some(true),
        capability_drop: c.hardening.drop_privileges.then(|| vec!["ALL".to_owned()]),
        ..Default::default()
    };
    let constraints = if pinned {
        vec![format!("node.id == {}", placement.stateful_node_id)]
    } else {
        placement.spread_constraints.clone()
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                memory_bytes: Some(c.hardening.memory_mib * 1024 * 1024),
                pids: Some(c.hardening.pids),
                nano_cpus: None,
            }),
            ..Default::default()
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
            delay: Some(Duration::from_secs(1).as_nanos() as i64),
            ..Default::default()
        }),
        placement: Some(TaskSpecPlacement {
            constraints: (!constraints.is_empty()).then_some(constraints),
            ..Default::default()
        }),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(c.network.clone()),
            aliases: (!c.aliases.is_empty()).then(|| c.aliases.clone()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let ports = c
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(p.container)),
            // 0: the engine picks a free port on the task's node (see the task's status).
            published_port: (p.host != 0).then_some(i64::from(p.host)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        })
        .collect();
    let mut spec = ServiceSpec {
        name: Some(c.name.clone()),
        labels: Some(labels),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas as i64),
            }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(ports),
        }),
        ..Default::default()
    };
    let task_hash = spec_hash(&spec.task_template, &secrets);
    if let Some(labels) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
        .and_then(|c| c.labels.as_mut())
    {
        labels.insert(LABEL_TASK_HASH.to_owned(), task_hash);
    }
    let hash = spec_hash(&spec, &secrets);
    spec.labels
        .get_or_insert_with(HashMap::new)
        .insert(LABEL_CONFIG_HASH.to_owned(), hash);
    (spec, secrets)
}

/// A short hash of `value` and the names of `secrets` (a secret's name holds its content's hash).
fn spec_hash(value: &impl serde::Serialize, secrets: &[SecretData]) -> String {
    let mut hasher = Sha256::new();
    // Maps (labels) serialize in any order: hash a form with sorted keys.
    let value = serde_json::to_value(value).expect("a service spec serializes");
    hasher.update(canonical(&value).as_bytes());
    for s in secrets {
        hasher.update(s.name.as_bytes());
    }
    hex_digest(&hasher.finalize()[..8])
}

/// `value` as JSON text with every object's keys in sorted order.
fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{config, images, secrets};
    use crate::plan::{fleet_plan, for_swarm, infra_plan, protect_member, protect_registry};
    use bollard::models::{Mount, MountType};

    fn placement() -> Placement {
        Placement {
            stateful_node_id: "node-a-id".into(),
            spread_constraints: vec!["node.labels.load == yes".into()],
            stop_grace: Duration::from_secs(5),
        }
    }

    fn services() -> Vec<SwarmService> {
        let c = config();
        let mut plan = infra_plan(&c, &images(), &secrets("pw-s3cret"));
        protect_registry(&mut plan, b"fleet:zk-s3cret");
        for_swarm(&mut plan, &c, &images(), "192.0.2.10".parse().unwrap());
        infra_services(&plan, &placement())
    }

    #[test]
    fn stateful_services_are_pinned_with_their_volumes_and_the_rest_spread() {
        for s in services() {
            let task = s.spec.task_template.as_ref().unwrap();
            let constraints = task.placement.as_ref().unwrap().constraints.clone();
            let container = task.container_spec.as_ref().unwrap();
            let volumes: Vec<&Mount> = container
                .mounts
                .as_ref()
                .unwrap()
                .iter()
                .filter(|m| m.typ == Some(MountType::VOLUME))
                .collect();
            let service = s.service.unwrap();
            if PINNED.contains(&service) {
                assert_eq!(
                    constraints,
                    Some(vec!["node.id == node-a-id".to_owned()]),
                    "{}",
                    s.name
                );
            } else {
                assert_eq!(
                    constraints,
                    Some(vec!["node.labels.load == yes".to_owned()]),
                    "{}",
                    s.name
                );
                assert!(volumes.is_empty(), "{} spreads without data", s.name);
            }
            for v in volumes {
                assert_eq!(
                    v.volume_options.as_ref().unwrap().labels.as_ref().unwrap()[LABEL_STACK],
                    "fleet"
                );
            }
            let endpoint = s.spec.endpoint_spec.as_ref().unwrap();
            assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
            for p in endpoint.ports.as_ref().unwrap() {
                assert_eq!(
                    p.publish_mode,
                    Some(EndpointPortConfigPublishModeEnum::HOST)
                );
            }
            assert_eq!(s.spec.labels.as_ref().unwrap()[LABEL_STACK], "fleet");
            assert_eq!(container.labels.as_ref().unwrap()[LABEL_STACK], "fleet");
            assert_eq!(container.read_only, Some(true), "{}", s.name);
            assert_eq!(container.init, Some(true));
        }
        let names: Vec<String> = services().into_iter().map(|s| s.name).collect();
        for expected in [
            "fleet-zookeeper",
            "fleet-postgres",
            "fleet-broker",
            "fleet-ingest",
            "fleet-consumer",
            "fleet-ingest-lb",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn secrets_are_swarm_secrets_never_environment() {
        for s in services() {
            let container = s
                .spec
                .task_template
                .as_ref()
                .unwrap()
                .container_spec
                .as_ref()
                .unwrap();
            let json = serde_json::to_string(&s.spec).unwrap();
            assert!(!json.contains("pw-s3cret"), "{}", s.name);
            assert!(!json.contains("zk-s3cret"), "{}", s.name);
            let refs = container.secrets.clone().unwrap_or_default();
            assert_eq!(refs.len(), s.secrets.len());
            for r in &refs {
                let file = r.file.as_ref().unwrap();
                assert_eq!(file.mode, Some(0o400));
                assert!(!file.name.as_ref().unwrap().starts_with('/'));
            }
            if s.service == Some(Service::Consumer) {
                assert!(
                    s.secrets.iter().any(|d| d.content == b"pw-s3cret"
                        && d.name.starts_with("fleet-postgres-password-"))
                );
            }
        }
    }

    #[test]
    fn the_config_hash_follows_the_spec_and_the_secrets() {
        let a = services();
        let b = services();
        assert_eq!(a[0].config_hash(), b[0].config_hash());
        let c = config();
        let mut plan = infra_plan(&c, &images(), &secrets("other"));
        for_swarm(&mut plan, &c, &images(), "192.0.2.10".parse().unwrap());
        let changed = infra_services(&plan, &placement());
        let pg = |v: &[SwarmService]| {
            v.iter()
                .find(|s| s.name == "fleet-postgres")
                .unwrap()
                .config_hash()
                .to_owned()
        };
        assert_ne!(pg(&a), pg(&changed), "a new password is a new secret");
    }

    #[test]
    fn the_task_hash_follows_the_task_template_and_not_the_replica_count() {
        let c = config();
        let mut specs = fleet_plan(&c, &images().runtime, 6, 3, false, None);
        protect_member(&mut specs[0], b"fleet:zk");
        let two = vehicle_service(&specs[0], "fleet", 2, 3, &placement());
        let five = vehicle_service(&specs[0], "fleet", 5, 3, &placement());
        assert!(!two.task_hash().is_empty());
        assert_ne!(
            two.config_hash(),
            five.config_hash(),
            "scaling updates the service"
        );
        assert_eq!(two.task_hash(), five.task_hash(), "scaling keeps its tasks");
        let mut changed = specs[0].clone();
        changed
            .env
            .insert("VEHICLE_EXTRA".to_owned(), "1".to_owned());
        let other = vehicle_service(&changed, "fleet", 2, 3, &placement());
        assert_ne!(
            two.task_hash(),
            other.task_hash(),
            "new tasks for a new template"
        );
        for s in services() {
            assert!(!s.task_hash().is_empty(), "{}", s.name);
        }
    }

    #[test]
    fn vehicles_take_their_identity_from_the_task_slot() {
        let c = config();
        let mut specs = fleet_plan(&c, &images().runtime, 6, 3, false, None);
        protect_member(&mut specs[0], b"fleet:zk");
        let v = vehicle_service(&specs[0], "fleet", 2, 3, &placement());
        assert_eq!(v.name, "fleet-vehicle");
        assert_eq!(v.replicas, 2);
        let container = v.spec.task_template.unwrap().container_spec.unwrap();
        let env = container.env.unwrap();
        assert!(
            env.contains(&"VEHICLE_FIRST_INDEX={{.Task.Slot}}0".to_owned()),
            "{env:?}"
        );
        assert!(env.contains(&"VEHICLE_COUNT=3".to_owned()));
        assert!(env.contains(&"REGISTRY_MEMBER_ID={{.Service.Name}}-{{.Task.Slot}}".to_owned()));
        assert_eq!(
            container.hostname.as_deref(),
            Some("{{.Service.Name}}-{{.Task.Slot}}")
        );
        assert_eq!(v.spec.labels.unwrap()[LABEL_PER_SLOT], "true");
        let ten = vehicle_service(&specs[0], "fleet", 1, 10, &placement());
        let env = ten
            .spec
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .env
            .unwrap();
        assert!(
            env.contains(&"VEHICLE_FIRST_INDEX={{.Task.Slot}}00".to_owned()),
            "{env:?}"
        );
    }
}
