//! [`Readiness`]: how each service is known to be ready, as data the engine probes.

use fleet_common::config::Config;
use fleet_common::settings::ports::{
    BROKER_PORT, CONSUMER_PORT, INGEST_PORT, POSTGRES_PORT, ZOOKEEPER_PORT,
};

use super::{Redacted, Service};

/// The path every one of our HTTP services answers 200 on once ready.
const READY_PATH: &str = "/readyz";

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

/// How `service` of `config` is known to be ready.
pub fn readiness(config: &Config, service: Service) -> Readiness {
    let ready_path = |port| Readiness::Http {
        port,
        path: READY_PATH.into(),
    };
    match service {
        Service::Zookeeper => Readiness::ZookeeperRuok {
            port: ZOOKEEPER_PORT,
        },
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
            port: POSTGRES_PORT,
            user: config.postgres.user.clone(),
            database: config.postgres.database.clone(),
            admin_password: None,
        },
        Service::Ingest => ready_path(INGEST_PORT),
        Service::Consumer => ready_path(CONSUMER_PORT),
        // Through the balancer to a replica: proves both.
        Service::IngestBalancer => ready_path(INGEST_PORT),
    }
}
