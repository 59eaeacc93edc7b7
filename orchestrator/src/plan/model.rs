//! The plan's data: which services a stack has ([`Service`]), one container of the plan
//! ([`ServicePlan`]) and the whole infrastructure ([`InfraPlan`]).

use std::time::Duration;

use fleet_common::config::POSTGRES_MEMORY_MIB;

use super::Readiness;
use crate::docker::ContainerSpec;

/// The services of the infrastructure, in a stable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// ZooKeeper.
    Zookeeper,
    /// The broker's own PostgreSQL server (its storage, with `broker.storage = "postgres"`).
    BrokerStorage,
    /// The brokers inside the stack network.
    Broker,
    /// The broker's host listener: one more broker on the same storage (a proxy with sqlite
    /// storage) that advertises the published host port.
    BrokerHost,
    /// PostgreSQL.
    Postgres,
    /// ingest.
    Ingest,
    /// consumer.
    Consumer,
    /// The TCP round-robin balancer on ingest's host port, when ingest has several replicas.
    IngestBalancer,
}

impl Service {
    /// Every infrastructure service.
    pub const ALL: [Service; 8] = [
        Service::Zookeeper,
        Service::BrokerStorage,
        Service::Broker,
        Service::BrokerHost,
        Service::Postgres,
        Service::Ingest,
        Service::Consumer,
        Service::IngestBalancer,
    ];

    /// The `io.fleet.service` label and container name suffix.
    pub fn name(self) -> &'static str {
        match self {
            Service::Zookeeper => "zookeeper",
            Service::BrokerStorage => "broker-storage",
            Service::Broker => "broker",
            Service::BrokerHost => "broker-host",
            Service::Postgres => "postgres",
            Service::Ingest => "ingest",
            Service::Consumer => "consumer",
            Service::IngestBalancer => "ingest-lb",
        }
    }

    /// Memory and process limits: generous for the expected load, tight enough that a
    /// runaway process cannot take the machine.
    pub(super) fn limits(self) -> Limits {
        let (memory_mib, pids) = match self {
            Service::Zookeeper => (512, 512),
            Service::Broker | Service::BrokerHost => (1024, 1024),
            Service::Postgres | Service::BrokerStorage => (POSTGRES_MEMORY_MIB, 512),
            Service::Ingest | Service::Consumer => (512, 512),
            Service::IngestBalancer => (256, 256),
        };
        Limits { memory_mib, pids }
    }
}

/// The `io.fleet.service` label of vehicle containers.
pub const VEHICLE_SERVICE: &str = "vehicle";

/// Memory and process limits of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Memory, MiB.
    pub(super) memory_mib: i64,
    /// Processes (threads included).
    pub(super) pids: i64,
}

/// The limits of a vehicle container.
pub(super) const VEHICLE_LIMITS: Limits = Limits {
    memory_mib: 256,
    pids: 256,
};

/// One container of the plan.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// Which service.
    pub service: Service,
    /// The container.
    pub spec: ContainerSpec,
    /// Services that must be ready before this one starts.
    pub depends_on: Vec<Service>,
    /// How readiness is checked.
    pub readiness: Readiness,
    /// How long readiness may take.
    pub timeout: Duration,
}

impl ServicePlan {
    /// The container's name within the stack: the service name, or `<service>-<i>` for a
    /// replica (what `fleet logs` and `fleet status` show).
    pub fn instance(&self) -> &str {
        self.spec
            .name
            .strip_prefix(&self.spec.stack)
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(&self.spec.name)
    }
}

/// The whole infrastructure of a stack.
#[derive(Debug, Clone)]
pub struct InfraPlan {
    /// The stack network.
    pub network: String,
    /// Named volumes: (volume, service).
    pub volumes: Vec<(String, String)>,
    /// The containers.
    pub services: Vec<ServicePlan>,
}

impl InfraPlan {
    /// The plan of `services` on `network`, declaring every volume they mount.
    pub(super) fn new(network: String, services: Vec<ServicePlan>) -> Self {
        let mut volumes: Vec<(String, String)> = Vec::new();
        for s in &services {
            for volume in s.spec.volumes.keys() {
                if !volumes.iter().any(|(v, _)| v == volume) {
                    volumes.push((volume.clone(), s.spec.service.clone()));
                }
            }
        }
        Self {
            network,
            volumes,
            services,
        }
    }
}
