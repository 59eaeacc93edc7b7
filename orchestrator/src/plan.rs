//! The launch plan as data: which containers a stack has, what each depends on, and how each is
//! known to be ready. Built from the config and the resolved images without touching Docker,
//! so that it is unit-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_common::config::{Config, ImageOverride};

use crate::docker::{ContainerSpec, Hardening, PortMap, SecretFile};
use crate::images::{ImageSet, Resolved};

mod broker;
mod registry_auth;
mod swarm;

pub use broker::{BROKER_STORAGE_DB, BROKER_STORAGE_PASSWORD_PATH};
pub use registry_auth::{ZOOKEEPER_AUTH_PATH, protect_member, protect_registry};
pub use swarm::{PINNED, for_swarm};

/// Where the PostgreSQL password is handed to containers.
pub const PASSWORD_PATH: &str = "/run/secrets/postgres-password";
/// Port of the broker inside the stack network.
pub const BROKER_PORT: u16 = 9092;
/// HTTP port of ingest inside its container.
pub const INGEST_PORT: u16 = 8080;
/// HTTP port of the consumer inside its container.
pub const CONSUMER_PORT: u16 = 8081;
/// HTTP port of a vehicle container (`/stats`).
pub const VEHICLE_PORT: u16 = 8090;
/// uid of the `fleet` user of the runtime image.
const RUNTIME_UID: u64 = 10001;
/// uid of the `postgres` user of the postgres image.
const POSTGRES_UID: u64 = 999;

/// A secret inside the plan (e.g. a probe's password): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

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
}

/// The `io.fleet.service` label of vehicle containers.
pub const VEHICLE_SERVICE: &str = "vehicle";

/// How a service is known to be ready (and what is set up once it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The container runs (for services probed through another one).
    Running,
    /// ZooKeeper answers `ruok` with `imok` and `srvr` with a mode.
    ZookeeperRuok {
        /// Container port to reach through its published host port.
        port: u16,
    },
    /// A Kafka metadata request lists a broker; then the topics are created.
    KafkaMetadata {
        /// Container port to reach through its published host port.
        port: u16,
        /// Topics to create: (name, partitions).
        topics: Vec<(String, i32)>,
    },
    /// A query succeeds as the application role; then the schema is applied as its owner,
    /// `fleet_admin` (see `fleet_common::roles`).
    PostgresQuery {
        /// Container port to reach through its published host port.
        port: u16,
        /// The role.
        user: String,
        /// The database.
        database: String,
        /// The password of `fleet_admin`, for the schema step; `None`: probe only.
        admin_password: Option<Redacted>,
    },
    /// A query succeeds on a PostgreSQL server that is not the stack's (the broker's
    /// storage), with its own password; no schema is applied (its user does that).
    PostgresStorage {
        /// Container port to reach through its published host port.
        port: u16,
        /// The role.
        user: String,
        /// The database.
        database: String,
        /// The role's password.
        password: Redacted,
    },
    /// `GET path` answers 200.
    Http {
        /// Container port to reach through its published host port.
        port: u16,
        /// The path, e.g. `/readyz`.
        path: String,
    },
}

impl Readiness {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Readiness::Running => "container running".into(),
            Readiness::ZookeeperRuok { .. } => "ZooKeeper `ruok` answers `imok`".into(),
            Readiness::KafkaMetadata { .. } => {
                "Kafka metadata lists a broker, topics created".into()
            }
            Readiness::PostgresQuery { user, database, .. } => {
                format!("query as {user} on {database} succeeds, schema applied")
            }
            Readiness::PostgresStorage { user, database, .. } => {
                format!("query as {user} on {database} succeeds")
            }
            Readiness::Http { path, .. } => format!("GET {path} answers 200"),
        }
    }
}

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

/// Naming of a stack's resources.
pub fn container_name(stack: &str, service: &str) -> String {
    format!("{stack}-{service}")
}

/// The stack network's name.
pub fn network_name(stack: &str) -> String {
    format!("{stack}-net")
}

fn volume_name(stack: &str, service: Service) -> String {
    format!("{stack}-{}-data", service.name())
}

fn secrets_volume(stack: &str, service: Service) -> String {
    format!("{stack}-{}-secrets", service.name())
}

/// Memory (MiB) and process limits per service: generous for the expected load, tight enough
/// that a runaway process cannot take the machine.
fn limits(service: &str) -> (i64, i64) {
    match service {
        "zookeeper" => (512, 512),
        "broker" | "broker-host" => (1024, 1024),
        "postgres" | "broker-storage" => (1024, 512),
        "ingest" | "consumer" => (512, 512),
        _ => (256, 256),
    }
}

struct Builder<'a> {
    config: &'a Config,
    network: String,
}

impl Builder<'_> {
    fn spec(&self, service: &str, image: &Resolved) -> ContainerSpec {
        ContainerSpec {
            name: container_name(&self.config.stack.name, service),
            stack: self.config.stack.name.clone(),
            service: service.to_owned(),
            image: image.reference.clone(),
            image_id: image.id.clone(),
            cmd: Vec::new(),
            env: BTreeMap::new(),
            ports: Vec::new(),
            volumes: BTreeMap::new(),
            network: self.network.clone(),
            aliases: Vec::new(),
            files: Vec::new(),
            hardening: {
                let (memory_mib, pids) = limits(service);
                Hardening {
                    drop_privileges: true,
                    read_only: false,
                    tmpfs: Vec::new(),
                    memory_mib,
                    pids,
                }
            },
        }
    }

    /// Our own services: read-only root, scratch space in tmpfs.
    fn read_only(spec: &mut ContainerSpec) {
        spec.hardening.read_only = true;
        spec.hardening.tmpfs = vec!["/tmp".into()];
    }

    /// `plan` as `replicas` containers. One replica keeps the plain name; several are named
    /// `<service>-<i>`, answer on the network also to the plain name, publish their ports on
    /// free host ports, and each gets its own secrets volume. `per_replica` sets what differs.
    fn replicate(
        &self,
        plan: ServicePlan,
        replicas: u32,
        per_replica: impl Fn(&mut ContainerSpec, u32),
    ) -> Vec<ServicePlan> {
        if replicas <= 1 {
            let mut single = plan;
            per_replica(&mut single.spec, 0);
            return vec![single];
        }
        let stack = &self.config.stack.name;
        let service = plan.service;
        (0..replicas)
            .map(|i| {
                let mut replica = plan.clone();
                let instance = format!("{}-{i}", service.name());
                replica.spec.name = container_name(stack, &instance);
                replica.spec.aliases.push(self.host(service));
                for port in &mut replica.spec.ports {
                    port.host = 0;
                }
                if let Some(target) = replica.spec.volumes.remove(&secrets_volume(stack, service)) {
                    replica
                        .spec
                        .volumes
                        .insert(format!("{stack}-{instance}-secrets"), target);
                }
                per_replica(&mut replica.spec, i);
                replica
            })
            .collect()
    }

    /// The TCP round-robin balancer that holds ingest's host port in front of `replicas`.
    fn balancer(&self, images: &ImageSet, replicas: &[ServicePlan]) -> ServicePlan {
        let service = Service::IngestBalancer;
        let mut spec = self.spec(service.name(), &images.runtime);
        spec.cmd = vec!["balancer".into()];
        Builder::read_only(&mut spec);
        self.publish(&mut spec, INGEST_PORT, self.config.ingest.host_port);
        let backends: Vec<String> = replicas
            .iter()
            .map(|r| format!("{}:{INGEST_PORT}", r.spec.name))
            .collect();
        spec.env.extend([
            (
                "BALANCER_LISTEN".to_owned(),
                format!("0.0.0.0:{INGEST_PORT}"),
            ),
            ("BALANCER_BACKENDS".to_owned(), backends.join(",")),
        ]);
        ServicePlan {
            service,
            spec,
            depends_on: vec![Service::Ingest],
            readiness: readiness(self.config, service),
            timeout: self.config.ingest.start_timeout,
        }
    }

    fn publish(&self, spec: &mut ContainerSpec, container: u16, host: u16) {
        spec.ports.push(PortMap {
            container,
            host_ip: self.config.stack.bind_address.clone(),
            host,
        });
    }

    fn host(&self, service: Service) -> String {
        container_name(&self.config.stack.name, service.name())
    }
}

fn apply_upstream(spec: &mut ContainerSpec, upstream: Option<&ImageOverride>) {
    if let Some(u) = upstream.filter(|u| !u.image.is_empty()) {
        // Upstream images often start as root and drop privileges themselves, and write where
        // their own recipe expects.
        spec.hardening.drop_privileges = false;
        spec.hardening.read_only = false;
        spec.hardening.tmpfs.clear();
        if !u.command.is_empty() {
            spec.cmd = u.command.clone();
        }
        spec.env.extend(u.env.clone());
    }
}

/// How `service` of `config` is known to be ready.
pub fn readiness(config: &Config, service: Service) -> Readiness {
    match service {
        Service::Zookeeper => Readiness::ZookeeperRuok { port: 2181 },
        // Each broker answers metadata; the host listener then creates the topics.
        Service::Broker => Readiness::KafkaMetadata {
            port: BROKER_PORT,
            topics: Vec::new(),
        },
        // The storage's own readiness holds its password (see `plan::broker`); as a plain
        // server it answers TCP.
        Service::BrokerStorage => Readiness::Running,
        Service::BrokerHost => Readiness::KafkaMetadata {
            port: BROKER_PORT,
            topics: vec![
                (config.broker.topic.clone(), config.broker.partitions),
                (config.broker.dlq_topic.clone(), 1),
                (
                    config.broker.summary_topic.clone(),
                    config.broker.partitions,
                ),
                (config.broker.metrics_topic.clone(), 1),
                (config.broker.histograms_topic.clone(), 1),
            ],
        },
        Service::Postgres => Readiness::PostgresQuery {
            port: 5432,
            user: config.postgres.user.clone(),
            database: config.postgres.database.clone(),
            admin_password: None,
        },
        Service::Ingest => Readiness::Http {
            port: INGEST_PORT,
            path: "/readyz".into(),
        },
        Service::Consumer => Readiness::Http {
            port: CONSUMER_PORT,
            path: "/readyz".into(),
        },
        // Through the balancer to a replica: proves both.
        Service::IngestBalancer => Readiness::Http {
            port: INGEST_PORT,
            path: "/readyz".into(),
        },
    }
}

/// Where ingest finds its bearer tokens, when they are configured.
pub const TOKENS_PATH: &str = "/run/secrets/ingest-tokens";

/// What is handed to containers as files, never as environment.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The stack's PostgreSQL password (the application role's).
    pub postgres_password: String,
    /// The password of `fleet_admin`, the schema's owner: used by fleet's schema step only,
    /// never handed to a container.
    pub postgres_admin_password: String,
    /// The password of the broker's PostgreSQL storage.
    pub broker_storage_password: String,
    /// The content of `ingest.tokens_file`, when set.
    pub ingest_tokens: Option<Vec<u8>>,
}

/// The plan for `config` with `images` and the stack's `secrets`.
pub fn infra_plan(config: &Config, images: &ImageSet, secrets: &Secrets) -> InfraPlan {
    let password = secrets.postgres_password.as_str();
    let stack = &config.stack.name;
    let b = Builder {
        config,
        network: network_name(stack),
    };
    let brokers = broker::bootstrap(&b);
    let mut services = Vec::new();

    let mut zk = b.spec(Service::Zookeeper.name(), &images.zookeeper);
    Builder::read_only(&mut zk);
    b.publish(&mut zk, 2181, config.zookeeper.host_port);
    zk.volumes.insert(
        volume_name(stack, Service::Zookeeper),
        "/var/lib/zookeeper".into(),
    );
    apply_upstream(&mut zk, config.zookeeper.upstream.as_ref());
    services.push(ServicePlan {
        service: Service::Zookeeper,
        spec: zk,
        depends_on: vec![],
        readiness: readiness(config, Service::Zookeeper),
        timeout: config.zookeeper.start_timeout,
    });

    services.extend(broker::broker_tier(&b, images, secrets));

    let mut pg = b.spec(Service::Postgres.name(), &images.postgres);
    Builder::read_only(&mut pg);
    // The server's socket and lock file.
    pg.hardening.tmpfs.push(format!(
        "/run/postgresql:uid={POSTGRES_UID},gid={POSTGRES_UID}"
    ));
    b.publish(&mut pg, 5432, config.postgres.host_port);
    pg.volumes.insert(
        volume_name(stack, Service::Postgres),
        "/var/lib/postgresql/data".into(),
    );
    // The password file is placed before start; a read-only root accepts it only in a volume.
    pg.volumes.insert(
        secrets_volume(stack, Service::Postgres),
        "/run/secrets".into(),
    );
    pg.env
        .insert("POSTGRES_USER".into(), config.postgres.user.clone());
    pg.env
        .insert("POSTGRES_DB".into(), config.postgres.database.clone());
    pg.env
        .insert("POSTGRES_PASSWORD_FILE".into(), PASSWORD_PATH.into());
    pg.files.push(SecretFile {
        path: PASSWORD_PATH.into(),
        uid: POSTGRES_UID,
        mode: 0o400,
        content: password.as_bytes().to_vec(),
    });
    apply_upstream(&mut pg, config.postgres.upstream.as_ref());
    services.push(ServicePlan {
        service: Service::Postgres,
        spec: pg,
        depends_on: vec![],
        readiness: match readiness(config, Service::Postgres) {
            Readiness::PostgresQuery {
                port,
                user,
                database,
                ..
            } => Readiness::PostgresQuery {
                port,
                user,
                database,
                admin_password: Some(Redacted(secrets.postgres_admin_password.clone())),
            },
            other => other,
        },
        timeout: config.postgres.start_timeout,
    });

    let mut ingest = b.spec(Service::Ingest.name(), &images.runtime);
    ingest.cmd = vec!["ingest".into()];
    Builder::read_only(&mut ingest);
    b.publish(&mut ingest, INGEST_PORT, config.ingest.host_port);
    ingest.env.extend([
        ("INGEST_LISTEN".to_owned(), format!("0.0.0.0:{INGEST_PORT}")),
        ("KAFKA_BROKERS".to_owned(), brokers.clone()),
        ("KAFKA_TOPIC".to_owned(), config.broker.topic.clone()),
        (
            "INGEST_MAX_BODY_BYTES".to_owned(),
            config.ingest.max_body_bytes.to_string(),
        ),
        // Hostile clients: the request timeout, load shedding and the dashboard's bounds.
        (
            "INGEST_REQUEST_TIMEOUT".to_owned(),
            humantime::format_duration(config.ingest.request_timeout).to_string(),
        ),
        (
            "INGEST_MAX_CONCURRENT_REQUESTS".to_owned(),
            config.ingest.max_concurrent_requests.to_string(),
        ),
        (
            "INGEST_MAX_CONNECTIONS".to_owned(),
            config.ingest.max_connections.to_string(),
        ),
        (
            "INGEST_DASHBOARD_REQUIRES_TOKEN".to_owned(),
            config.ingest.dashboard_requires_token.to_string(),
        ),
        (
            "INGEST_DASHBOARD_VEHICLE_TTL".to_owned(),
            humantime::format_duration(config.ingest.dashboard_vehicle_ttl).to_string(),
        ),
        (
            "INGEST_DASHBOARD_MAP_VEHICLES".to_owned(),
            config.ingest.dashboard_map_vehicles.to_string(),
        ),
        (
            "INGEST_DASHBOARD_MAX_MESSAGE_BYTES".to_owned(),
            config.ingest.dashboard_max_message_bytes.to_string(),
        ),
        (
            "INGEST_MAX_RECORDS_PER_REQUEST".to_owned(),
            config.ingest.max_records_per_request.to_string(),
        ),
        (
            "INGEST_PRODUCE_TIMEOUT".to_owned(),
            humantime::format_duration(config.ingest.produce_timeout).to_string(),
        ),
        (
            "INGEST_PRODUCER_LINGER".to_owned(),
            humantime::format_duration(config.ingest.producer_linger).to_string(),
        ),
        (
            "INGEST_RATE_LIMIT_PER_VIN".to_owned(),
            config.ingest.rate_limit_per_vin.to_string(),
        ),
        // The dashboard reads the consumer's output topics and draws the vehicles' area.
        (
            "INGEST_SUMMARY_TOPIC".to_owned(),
            config.broker.summary_topic.clone(),
        ),
        (
            "INGEST_METRICS_TOPIC".to_owned(),
            config.broker.metrics_topic.clone(),
        ),
        (
            "INGEST_HISTOGRAMS_TOPIC".to_owned(),
            config.broker.histograms_topic.clone(),
        ),
        (
            "INGEST_MAP_ORIGIN_LAT".to_owned(),
            config.vehicles.origin_lat.to_string(),
        ),
        (
            "INGEST_MAP_ORIGIN_LON".to_owned(),
            config.vehicles.origin_lon.to_string(),
        ),
        (
            "INGEST_MAP_RADIUS_M".to_owned(),
            config.vehicles.area_radius_m.to_string(),
        ),
    ]);
    if let Some(tokens) = &secrets.ingest_tokens {
        ingest
            .env
            .insert("INGEST_TOKENS_FILE".into(), TOKENS_PATH.into());
        ingest.volumes.insert(
            secrets_volume(stack, Service::Ingest),
            "/run/secrets".into(),
        );
        ingest.files.push(SecretFile {
            path: TOKENS_PATH.into(),
            uid: RUNTIME_UID,
            mode: 0o400,
            content: tokens.clone(),
        });
    }
    let ingest = ServicePlan {
        service: Service::Ingest,
        spec: ingest,
        // The host listener creates the topics once it is ready.
        depends_on: vec![Service::Broker, Service::BrokerHost],
        readiness: readiness(config, Service::Ingest),
        timeout: config.ingest.start_timeout,
    };
    let ingest_replicas = b.replicate(ingest, config.ingest.replicas, |_, _| {});
    if ingest_replicas.len() > 1 {
        services.push(b.balancer(images, &ingest_replicas));
    }
    services.extend(ingest_replicas);

    let mut consumer = b.spec(Service::Consumer.name(), &images.runtime);
    consumer.cmd = vec!["consumer".into()];
    Builder::read_only(&mut consumer);
    // The password file is placed before start; a read-only root accepts it only in a volume.
    consumer.volumes.insert(
        secrets_volume(stack, Service::Consumer),
        "/run/secrets".into(),
    );
    // Published on a free host port, for readiness and metrics.
    b.publish(&mut consumer, CONSUMER_PORT, 0);
    consumer.env.extend([
        (
            "CONSUMER_LISTEN".to_owned(),
            format!("0.0.0.0:{CONSUMER_PORT}"),
        ),
        ("KAFKA_BROKERS".to_owned(), brokers.clone()),
        ("KAFKA_TOPIC".to_owned(), config.broker.topic.clone()),
        (
            "KAFKA_DLQ_TOPIC".to_owned(),
            config.broker.dlq_topic.clone(),
        ),
        ("CONSUMER_GROUP".to_owned(), config.consumer.group.clone()),
        ("PG_HOST".to_owned(), b.host(Service::Postgres)),
        ("PG_PORT".to_owned(), "5432".to_owned()),
        ("PG_USER".to_owned(), config.postgres.user.clone()),
        ("PG_DATABASE".to_owned(), config.postgres.database.clone()),
        ("PG_PASSWORD_FILE".to_owned(), PASSWORD_PATH.to_owned()),
        (
            "CONSUMER_BATCH_MAX_RECORDS".to_owned(),
            config.consumer.batch_max_records.to_string(),
        ),
        (
            "CONSUMER_BATCH_MAX_WAIT".to_owned(),
            humantime::format_duration(config.consumer.batch_max_wait).to_string(),
        ),
        (
            "CONSUMER_FETCH_WAIT".to_owned(),
            humantime::format_duration(config.consumer.fetch_wait).to_string(),
        ),
        (
            "CONSUMER_SUMMARY_TOPIC".to_owned(),
            config.broker.summary_topic.clone(),
        ),
        (
            "CONSUMER_METRICS_TOPIC".to_owned(),
            config.broker.metrics_topic.clone(),
        ),
        (
            "CONSUMER_HISTOGRAMS_TOPIC".to_owned(),
            config.broker.histograms_topic.clone(),
        ),
        (
            "CONSUMER_REPLICAS".to_owned(),
            config.consumer.replicas.to_string(),
        ),
    ]);
    consumer.files.push(SecretFile {
        path: PASSWORD_PATH.into(),
        uid: RUNTIME_UID,
        mode: 0o400,
        content: password.as_bytes().to_vec(),
    });
    let consumer = ServicePlan {
        service: Service::Consumer,
        spec: consumer,
        depends_on: vec![Service::Broker, Service::BrokerHost, Service::Postgres],
        readiness: readiness(config, Service::Consumer),
        timeout: config.consumer.start_timeout,
    };
    // A fixed instance id and index per replica: the index places the replica's share of the
    // partitions while the registry is not reachable.
    services.extend(b.replicate(consumer, config.consumer.replicas, |spec, i| {
        spec.env.insert(
            "CONSUMER_INSTANCE_ID".into(),
            format!("{stack}-consumer-{i}"),
        );
        spec.env
            .insert("CONSUMER_REPLICA_INDEX".into(), i.to_string());
    }));

    for s in &mut services {
        match s.service {
            Service::Ingest => registry_env(config, &mut s.spec, INGEST_PORT),
            Service::Consumer => registry_env(config, &mut s.spec, CONSUMER_PORT),
            _ => {}
        }
    }

    let mut volumes: Vec<(String, String)> = Vec::new();
    for s in &services {
        for volume in s.spec.volumes.keys() {
            if !volumes.iter().any(|(v, _)| v == volume) {
                volumes.push((volume.clone(), s.spec.service.clone()));
            }
        }
    }
    InfraPlan {
        network: b.network,
        volumes,
        services,
    }
}

/// Groups services into waves: each wave's dependencies are all in earlier waves, so a wave's
/// services start in parallel.
pub fn waves(services: &[ServicePlan]) -> Vec<Vec<Service>> {
    let mut done: Vec<Service> = Vec::new();
    let mut waves = Vec::new();
    let distinct = {
        let mut all: Vec<Service> = services.iter().map(|s| s.service).collect();
        all.sort();
        all.dedup();
        all.len()
    };
    while done.len() < distinct {
        let mut wave: Vec<Service> = services
            .iter()
            .filter(|s| !done.contains(&s.service))
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d)))
            .map(|s| s.service)
            .collect();
        wave.dedup();
        assert!(!wave.is_empty(), "the plan has a dependency cycle");
        done.extend(&wave);
        waves.push(wave);
    }
    waves
}

/// Every service that depends on one of `changed`, directly or through others.
pub fn dependents(services: &[ServicePlan], changed: &[Service]) -> Vec<Service> {
    let mut found: Vec<Service> = Vec::new();
    let mut frontier: Vec<Service> = changed.to_vec();
    while let Some(service) = frontier.pop() {
        for s in services {
            if s.depends_on.contains(&service)
                && !found.contains(&s.service)
                && !changed.contains(&s.service)
            {
                found.push(s.service);
                frontier.push(s.service);
            }
        }
    }
    found.sort();
    found
}

/// The registry settings of one of our containers: where ZooKeeper is, the stack, and the
/// container's member id and in-network address (`http://<container>:<port>`).
fn registry_env(config: &Config, spec: &mut ContainerSpec, port: u16) {
    let stack = &config.stack.name;
    spec.env.extend([
        (
            "ZOOKEEPER_CONNECT".to_owned(),
            format!("{}:2181", container_name(stack, Service::Zookeeper.name())),
        ),
        ("REGISTRY_STACK".to_owned(), stack.clone()),
        (
            "ZOOKEEPER_SESSION_TIMEOUT".to_owned(),
            humantime::format_duration(config.zookeeper.session_timeout).to_string(),
        ),
        ("REGISTRY_MEMBER_ID".to_owned(), spec.name.clone()),
        (
            "REGISTRY_ADDRESS".to_owned(),
            format!("http://{}:{port}", spec.name),
        ),
    ]);
}

/// The vehicle containers for `num_vehicles`, `per_container` vehicles each; with
/// `legacy_form` they post the old client's form-encoded events.
pub fn fleet_plan(
    config: &Config,
    runtime: &Resolved,
    num_vehicles: u32,
    per_container: u32,
    legacy_form: bool,
    duration: Option<Duration>,
) -> Vec<ContainerSpec> {
    let b = Builder {
        config,
        network: network_name(&config.stack.name),
    };
    let v = &config.vehicles;
    let catalogue = serde_json::to_string(&v.catalogue).expect("the catalogue serializes");
    let ingest_url = format!("http://{}:{INGEST_PORT}/events", b.host(Service::Ingest));
    let containers = num_vehicles.div_ceil(per_container);
    (0..containers)
        .map(|j| {
            let first = j * per_container;
            let count = per_container.min(num_vehicles - first);
            let mut spec = b.spec(VEHICLE_SERVICE, runtime);
            spec.name = container_name(&config.stack.name, &format!("vehicle-{j}"));
            spec.cmd = vec!["vehicle".into()];
            Builder::read_only(&mut spec);
            b.publish(&mut spec, VEHICLE_PORT, 0);
            spec.env.extend([
                ("VEHICLE_INGEST_URL".to_owned(), ingest_url.clone()),
                ("VEHICLE_COUNT".to_owned(), count.to_string()),
                ("VEHICLE_FIRST_INDEX".to_owned(), first.to_string()),
                ("VEHICLE_SEED".to_owned(), v.seed.to_string()),
                (
                    "VEHICLE_REPORT_INTERVAL".to_owned(),
                    humantime::format_duration(v.report_interval).to_string(),
                ),
                (
                    "VEHICLE_REPORT_JITTER".to_owned(),
                    v.report_jitter.to_string(),
                ),
                (
                    "VEHICLE_FAULT_SPIKE_RATE".to_owned(),
                    v.fault_spike_rate.to_string(),
                ),
                (
                    "VEHICLE_FAULT_STUCK_RATE".to_owned(),
                    v.fault_stuck_rate.to_string(),
                ),
                (
                    "VEHICLE_FAULT_STUCK_DURATION".to_owned(),
                    humantime::format_duration(v.fault_stuck_duration).to_string(),
                ),
                ("VEHICLE_LEGACY_FORM".to_owned(), legacy_form.to_string()),
                ("VEHICLE_CATALOGUE".to_owned(), catalogue.clone()),
                ("VEHICLE_ORIGIN_LAT".to_owned(), v.origin_lat.to_string()),
                ("VEHICLE_ORIGIN_LON".to_owned(), v.origin_lon.to_string()),
                (
                    "VEHICLE_AREA_RADIUS_M".to_owned(),
                    v.area_radius_m.to_string(),
                ),
                (
                    "VEHICLE_LISTEN".to_owned(),
                    format!("0.0.0.0:{VEHICLE_PORT}"),
                ),
            ]);
            if let Some(duration) = duration {
                spec.env.insert(
                    "VEHICLE_DURATION".to_owned(),
                    humantime::format_duration(duration).to_string(),
                );
            }
            registry_env(config, &mut spec, VEHICLE_PORT);
            spec
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> Config {
        fleet_common::config::load_from_str(
            include_str!("../../config.master.toml"),
            "config.master.toml",
            Vec::new(),
        )
        .unwrap()
    }

    pub(crate) fn secrets(password: &str) -> Secrets {
        Secrets {
            postgres_password: password.into(),
            postgres_admin_password: format!("{password}-admin"),
            broker_storage_password: format!("{password}-broker"),
            ingest_tokens: None,
        }
    }

    pub(crate) fn images() -> ImageSet {
        let r = |n: &str| Resolved {
            reference: format!("fleet/{n}:1"),
            id: format!("sha256:{n}"),
        };
        ImageSet {
            zookeeper: r("zookeeper"),
            broker: r("broker"),
            postgres: r("postgres"),
            runtime: r("runtime"),
        }
    }

    #[test]
    fn waves_respect_dependencies_and_parallelise() {
        let plan = infra_plan(&config(), &images(), &secrets("pw"));
        let waves = waves(&plan.services);
        let position = |s: Service| waves.iter().position(|w| w.contains(&s)).unwrap();
        for s in &plan.services {
            for d in &s.depends_on {
                assert!(
                    position(*d) < position(s.service),
                    "{:?} before {:?}",
                    d,
                    s.service
                );
            }
        }
        // ZooKeeper, the broker's storage and PostgreSQL start together, then the brokers.
        assert_eq!(
            waves[0],
            vec![
                Service::Zookeeper,
                Service::BrokerStorage,
                Service::Postgres
            ]
        );
        assert_eq!(waves[1], vec![Service::Broker, Service::BrokerHost]);
        assert_eq!(
            waves.last().unwrap(),
            &vec![Service::Ingest, Service::Consumer]
        );
    }

    #[test]
    fn broker_replicas_share_one_name_and_the_storage() {
        let mut c = config();
        c.broker.replicas = 3;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let brokers: Vec<&ServicePlan> = plan
            .services
            .iter()
            .filter(|s| s.service == Service::Broker)
            .collect();
        assert_eq!(brokers.len(), 3);
        for (i, b) in brokers.iter().enumerate() {
            assert_eq!(b.spec.name, format!("fleet-broker-{i}"));
            assert_eq!(b.spec.aliases, vec!["fleet-broker".to_owned()]);
            let advertised = b
                .spec
                .cmd
                .iter()
                .position(|a| a == "--advertised-listener-url");
            assert_eq!(
                b.spec.cmd[advertised.unwrap() + 1],
                "tcp://fleet-broker:9092",
                "every broker advertises the shared name"
            );
            assert_eq!(
                b.spec.env["BROKER_STORAGE"],
                "postgres://nisshi@fleet-broker-storage:5432/nisshi"
            );
            assert!(
                !b.spec.env.values().any(|v| v.contains("pw-broker")),
                "the storage password is a file, never in the environment"
            );
            assert!(
                b.spec
                    .files
                    .iter()
                    .any(|f| f.path == BROKER_STORAGE_PASSWORD_PATH)
            );
            assert!(
                b.spec
                    .volumes
                    .contains_key(&format!("fleet-broker-{i}-secrets")),
                "each broker has a secrets volume of its own: {:?}",
                b.spec.volumes
            );
        }
        let host = plan
            .services
            .iter()
            .find(|s| s.service == Service::BrokerHost)
            .unwrap();
        assert_eq!(host.spec.cmd[0], "broker", "the host listener is a broker");
        assert!(host.spec.volumes.contains_key("fleet-broker-host-secrets"));
        assert!(
            host.spec
                .cmd
                .contains(&format!("tcp://127.0.0.1:{}", c.broker.host_port))
        );
        assert_eq!(host.depends_on, vec![Service::BrokerStorage]);
    }

    #[test]
    fn sqlite_storage_has_one_broker_and_a_proxy_on_the_host() {
        let mut c = config();
        c.broker.storage = fleet_common::config::BrokerStorage::Sqlite;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        assert!(
            !plan
                .services
                .iter()
                .any(|s| s.service == Service::BrokerStorage)
        );
        let broker = plan
            .services
            .iter()
            .find(|s| s.service == Service::Broker)
            .unwrap();
        assert_eq!(broker.spec.env["BROKER_STORAGE"], "sqlite://nisshi.db");
        assert!(broker.spec.volumes.values().any(|v| v == "/var/lib/nisshi"));
        let host = plan
            .services
            .iter()
            .find(|s| s.service == Service::BrokerHost)
            .unwrap();
        assert_eq!(host.spec.cmd[0], "proxy");
        assert_eq!(host.depends_on, vec![Service::Broker]);
    }

    #[test]
    fn dependents_are_transitive() {
        let plan = infra_plan(&config(), &images(), &secrets("pw"));
        assert_eq!(
            dependents(&plan.services, &[Service::BrokerStorage]),
            vec![
                Service::Broker,
                Service::BrokerHost,
                Service::Ingest,
                Service::Consumer
            ]
        );
        assert_eq!(
            dependents(&plan.services, &[Service::Broker]),
            vec![Service::Ingest, Service::Consumer]
        );
        assert_eq!(
            dependents(&plan.services, &[Service::Postgres]),
            vec![Service::Consumer]
        );
        assert!(dependents(&plan.services, &[Service::Ingest]).is_empty());
    }

    #[test]
    fn every_container_is_labelled_named_and_on_the_network() {
        let c = config();
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        // One ingest: no balancer.
        assert_eq!(plan.services.len(), Service::ALL.len() - 1);
        for s in &plan.services {
            assert_eq!(s.spec.stack, "fleet");
            assert_eq!(s.spec.name, format!("fleet-{}", s.service.name()));
            assert_eq!(s.spec.network, "fleet-net");
            for p in &s.spec.ports {
                assert_eq!(p.host_ip, "127.0.0.1");
            }
        }
    }

    #[test]
    fn our_services_are_locked_down_and_every_volume_is_declared() {
        let plan = infra_plan(&config(), &images(), &secrets("pw"));
        for s in &plan.services {
            assert!(s.spec.hardening.drop_privileges, "{:?}", s.service);
            assert!(s.spec.hardening.memory_mib > 0 && s.spec.hardening.pids > 0);
            for volume in s.spec.volumes.keys() {
                assert!(
                    plan.volumes.iter().any(|(v, _)| v == volume),
                    "{volume} undeclared"
                );
            }
        }
        for s in &plan.services {
            assert!(
                s.spec.hardening.read_only,
                "{:?} has a read-only root",
                s.service
            );
            assert!(s.spec.hardening.tmpfs.contains(&"/tmp".to_owned()));
            // Secrets are placed before start: only a volume takes them on a read-only root.
            for file in &s.spec.files {
                assert!(
                    s.spec
                        .volumes
                        .values()
                        .any(|target| file.path.starts_with(&format!("{target}/"))),
                    "{} of {:?} is not in a volume",
                    file.path,
                    s.service
                );
            }
        }
    }

    #[test]
    fn replicas_share_a_name_and_the_balancer_holds_the_host_port() {
        let mut c = config();
        c.ingest.replicas = 2;
        c.consumer.replicas = 2;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let of = |svc: Service| -> Vec<&ServicePlan> {
            plan.services.iter().filter(|s| s.service == svc).collect()
        };
        let ingest = of(Service::Ingest);
        let names: Vec<&str> = ingest.iter().map(|s| s.instance()).collect();
        assert_eq!(names, ["ingest-0", "ingest-1"]);
        for replica in &ingest {
            assert_eq!(replica.spec.aliases, ["fleet-ingest"]);
            assert_eq!(
                replica.spec.ports[0].host, 0,
                "a free host port per replica"
            );
        }
        let lb = of(Service::IngestBalancer);
        assert_eq!(lb.len(), 1);
        assert_eq!(lb[0].spec.ports[0].host, c.ingest.host_port);
        assert_eq!(
            lb[0].spec.env["BALANCER_BACKENDS"],
            "fleet-ingest-0:8080,fleet-ingest-1:8080"
        );
        let consumers = of(Service::Consumer);
        let ids: Vec<&str> = consumers
            .iter()
            .map(|s| s.spec.env["CONSUMER_INSTANCE_ID"].as_str())
            .collect();
        assert_eq!(ids, ["fleet-consumer-0", "fleet-consumer-1"]);
        for consumer in &consumers {
            assert_eq!(consumer.spec.env["CONSUMER_FETCH_WAIT"], "100ms");
        }
        let secrets: Vec<&String> = consumers
            .iter()
            .flat_map(|s| s.spec.volumes.keys())
            .collect();
        assert_eq!(
            secrets,
            ["fleet-consumer-0-secrets", "fleet-consumer-1-secrets"]
        );
        for v in secrets {
            assert!(plan.volumes.iter().any(|(name, _)| name == v));
        }
        let waves = waves(&plan.services);
        assert_eq!(
            waves[waves.len() - 2],
            vec![Service::Ingest, Service::Consumer]
        );
        assert_eq!(waves.last().unwrap(), &vec![Service::IngestBalancer]);
        // Vehicles reach the replicas through the shared name.
        let fleet = fleet_plan(&c, &images().runtime, 1, 1, false, None);
        assert_eq!(
            fleet[0].env["VEHICLE_INGEST_URL"],
            "http://fleet-ingest:8080/events"
        );
    }

    #[test]
    fn password_travels_as_a_file_never_in_env() {
        let plan = infra_plan(&config(), &images(), &secrets("s3cret-pw"));
        for s in &plan.services {
            for (k, v) in &s.spec.env {
                assert!(
                    !v.contains("s3cret-pw"),
                    "{k} of {:?} holds the password",
                    s.service
                );
            }
        }
        let pg = plan
            .services
            .iter()
            .find(|s| s.service == Service::Postgres)
            .unwrap();
        assert_eq!(pg.spec.files[0].content, b"s3cret-pw");
        assert_eq!(pg.spec.files[0].mode, 0o400);
    }

    #[test]
    fn the_admin_password_reaches_fleets_schema_step_only() {
        let plan = infra_plan(&config(), &images(), &secrets("s3cret-pw"));
        for s in &plan.services {
            assert!(
                s.spec.env.values().all(|v| !v.contains("s3cret-pw-admin"))
                    && s.spec.files.iter().all(|f| f.content != b"s3cret-pw-admin"),
                "{:?} holds the admin password",
                s.service
            );
        }
        let pg = plan
            .services
            .iter()
            .find(|s| s.service == Service::Postgres)
            .unwrap();
        assert!(matches!(
            &pg.readiness,
            Readiness::PostgresQuery { admin_password: Some(p), .. } if p.0 == "s3cret-pw-admin"
        ));
        assert!(!format!("{:?}", pg.readiness).contains("s3cret"));
    }

    #[test]
    fn ingest_gets_its_limits_as_env() {
        let mut c = config();
        c.ingest.request_timeout = std::time::Duration::from_secs(45);
        c.ingest.max_connections = 77;
        c.ingest.dashboard_requires_token = false;
        c.ingest.producer_linger = std::time::Duration::from_micros(500);
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let ingest = plan
            .services
            .iter()
            .find(|p| p.service == Service::Ingest)
            .unwrap();
        let env = &ingest.spec.env;
        assert_eq!(env["INGEST_REQUEST_TIMEOUT"], "45s");
        assert_eq!(env["INGEST_MAX_CONCURRENT_REQUESTS"], "512");
        assert_eq!(env["INGEST_MAX_CONNECTIONS"], "77");
        assert_eq!(env["INGEST_PRODUCER_LINGER"], "500us");
        assert_eq!(env["INGEST_DASHBOARD_REQUIRES_TOKEN"], "false");
        assert_eq!(env["INGEST_DASHBOARD_VEHICLE_TTL"], "1h");
        assert_eq!(env["INGEST_DASHBOARD_MAP_VEHICLES"], "5000");
        assert_eq!(env["INGEST_DASHBOARD_MAX_MESSAGE_BYTES"], "262144");
    }

    #[test]
    fn tokens_travel_as_a_file_in_a_secrets_volume() {
        let mut s = secrets("pw");
        s.ingest_tokens = Some(b"1M8GDM9AXKP042788 a-long-enough-token".to_vec());
        let plan = infra_plan(&config(), &images(), &s);
        let ingest = plan
            .services
            .iter()
            .find(|p| p.service == Service::Ingest)
            .unwrap();
        assert_eq!(ingest.spec.env["INGEST_TOKENS_FILE"], TOKENS_PATH);
        assert_eq!(ingest.spec.files[0].path, TOKENS_PATH);
        assert!(
            plan.volumes
                .iter()
                .any(|(v, _)| v == "fleet-ingest-secrets")
        );
        assert!(
            !ingest
                .spec
                .env
                .values()
                .any(|v| v.contains("a-long-enough-token"))
        );
        let without = infra_plan(&config(), &images(), &secrets("pw"));
        assert!(
            !without
                .volumes
                .iter()
                .any(|(v, _)| v == "fleet-ingest-secrets")
        );
    }

    #[test]
    fn published_ports_come_from_config() {
        let c = config();
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let host_port = |svc: Service| {
            plan.services
                .iter()
                .find(|s| s.service == svc)
                .unwrap()
                .spec
                .ports[0]
                .host
        };
        assert_eq!(host_port(Service::Zookeeper), c.zookeeper.host_port);
        assert_eq!(host_port(Service::BrokerHost), c.broker.host_port);
        assert_eq!(host_port(Service::Postgres), c.postgres.host_port);
        assert_eq!(host_port(Service::Ingest), c.ingest.host_port);
    }

    #[test]
    fn our_containers_join_the_registry_under_their_own_names() {
        let c = config();
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let mut specs: Vec<&ContainerSpec> = plan
            .services
            .iter()
            .filter(|s| matches!(s.service, Service::Ingest | Service::Consumer))
            .map(|s| &s.spec)
            .collect();
        let vehicles = fleet_plan(&c, &images().runtime, 4, 2, false, None);
        specs.extend(&vehicles);
        assert_eq!(specs.len(), 4);
        for spec in specs {
            assert_eq!(spec.env["ZOOKEEPER_CONNECT"], "fleet-zookeeper:2181");
            assert_eq!(spec.env["REGISTRY_STACK"], "fleet");
            assert_eq!(spec.env["REGISTRY_MEMBER_ID"], spec.name);
            assert!(
                spec.env["REGISTRY_ADDRESS"].starts_with(&format!("http://{}:", spec.name)),
                "{}",
                spec.name
            );
        }
        let zk = plan
            .services
            .iter()
            .find(|s| s.service == Service::Zookeeper)
            .unwrap();
        assert!(!zk.spec.env.contains_key("ZOOKEEPER_CONNECT"));
    }

    #[test]
    fn fleet_plan_splits_vehicles_over_containers() {
        let c = config();
        let specs = fleet_plan(&c, &images().runtime, 10, 4, false, None);
        assert_eq!(specs.len(), 3);
        let counts: Vec<&str> = specs
            .iter()
            .map(|s| s.env["VEHICLE_COUNT"].as_str())
            .collect();
        assert_eq!(counts, ["4", "4", "2"]);
        let firsts: Vec<&str> = specs
            .iter()
            .map(|s| s.env["VEHICLE_FIRST_INDEX"].as_str())
            .collect();
        assert_eq!(firsts, ["0", "4", "8"]);
        assert!(specs.iter().all(|s| s.service == VEHICLE_SERVICE));
        assert_eq!(specs[2].name, "fleet-vehicle-2");
        assert_eq!(specs[0].env["VEHICLE_LEGACY_FORM"], "false");
        assert!(
            specs
                .iter()
                .all(|s| !s.env.contains_key("VEHICLE_DURATION")),
            "without a duration the vehicles report until stopped"
        );
    }

    #[test]
    fn fleet_plan_passes_the_duration_to_every_container() {
        let specs = fleet_plan(
            &config(),
            &images().runtime,
            5,
            2,
            false,
            Some(Duration::from_secs(90)),
        );
        assert_eq!(specs.len(), 3);
        assert!(specs.iter().all(|s| s.env["VEHICLE_DURATION"] == "1m 30s"));
    }

    #[test]
    fn fleet_plan_passes_jitter_faults_and_the_legacy_flag() {
        let mut c = config();
        c.vehicles.report_jitter = 0.2;
        c.vehicles.fault_spike_rate = 0.01;
        c.vehicles.fault_stuck_rate = 0.002;
        c.vehicles.fault_stuck_duration = std::time::Duration::from_secs(45);
        let spec = &fleet_plan(&c, &images().runtime, 1, 1, true, None)[0];
        assert_eq!(spec.env["VEHICLE_REPORT_JITTER"], "0.2");
        assert_eq!(spec.env["VEHICLE_FAULT_SPIKE_RATE"], "0.01");
        assert_eq!(spec.env["VEHICLE_FAULT_STUCK_RATE"], "0.002");
        assert_eq!(spec.env["VEHICLE_FAULT_STUCK_DURATION"], "45s");
        assert_eq!(spec.env["VEHICLE_LEGACY_FORM"], "true");
    }
}
