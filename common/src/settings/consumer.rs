//! [`ConsumerSettings`]: what the orchestrator starts a consumer replica with, the reader of
//! the input topic that stores batches in PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::SettingsError;
use super::env::*;
use super::limits;
use super::limits::duration_text;
use super::ports::{CONSUMER_PORT, POSTGRES_PORT, listen_on};
use crate::config::{BatchMaxRecords, Config};

/// A consumer replica's settings: every field is a flag and an environment variable.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ConsumerSettings {
    /// Address of the HTTP endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = CONSUMER_LISTEN, default_value_t = listen_on(CONSUMER_PORT))]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, comma separated `host:port`.
    #[arg(long, env = KAFKA_BROKERS)]
    pub kafka_brokers: String,

    /// Topic to consume.
    #[arg(long, env = KAFKA_TOPIC, default_value = "telemetry")]
    pub kafka_topic: String,

    /// Topic that receives records that can never be stored.
    #[arg(long, env = KAFKA_DLQ_TOPIC, default_value = "telemetry.dlq")]
    pub kafka_dlq_topic: String,

    /// Consumer group id; also the key of this consumer's rows in `consumer_offsets`.
    #[arg(long, env = CONSUMER_GROUP, default_value = "fleet-consumer")]
    pub group: String,

    /// This replica's id, fixed per replica (client ids). Default: the host name.
    #[arg(long, env = CONSUMER_INSTANCE_ID)]
    pub instance_id: Option<String>,

    /// Configured number of consumer replicas: with `--replica-index`, the share of the
    /// partitions this replica reads while the registry is not reachable.
    #[arg(long, env = CONSUMER_REPLICAS, default_value_t = 1,
          value_parser = limits::CONSUMER_REPLICAS.parser())]
    pub replicas: u32,

    /// This replica's index among `--replicas` (0-based).
    #[arg(long, env = CONSUMER_REPLICA_INDEX, default_value_t = 0)]
    pub replica_index: u32,

    /// PostgreSQL host.
    #[arg(long, env = PG_HOST)]
    pub pg_host: String,

    /// PostgreSQL port.
    #[arg(long, env = PG_PORT, default_value_t = POSTGRES_PORT)]
    pub pg_port: u16,

    /// PostgreSQL role.
    #[arg(long, env = PG_USER)]
    pub pg_user: String,

    /// PostgreSQL database.
    #[arg(long, env = PG_DATABASE, default_value = "av_telemetry")]
    pub pg_database: String,

    /// File holding the PostgreSQL password (a trailing newline is ignored). Without it, no
    /// password is sent.
    #[arg(long, env = PG_PASSWORD_FILE)]
    pub pg_password_file: Option<PathBuf>,

    /// Largest number of records in one batch (one PostgreSQL transaction), 1 to 100,000.
    #[arg(long, env = CONSUMER_BATCH_MAX_RECORDS, default_value_t = BatchMaxRecords::DEFAULT,
          value_parser = clap::value_parser!(BatchMaxRecords))]
    pub batch_max_records: BatchMaxRecords,

    /// How long a batch lingers for more records after its first one before it is written
    /// when no write is in flight (while one is, records gather anyway), e.g. `1ms`; 1ms to 60s.
    #[arg(long, env = CONSUMER_BATCH_MAX_WAIT, default_value = "1ms",
          value_parser = limits::BATCH_MAX_WAIT.parser())]
    pub batch_max_wait: Duration,

    /// Longest time the broker holds a fetch that found nothing (`fetch.wait.max.ms`), 10ms to
    /// 10s. Nisshi also stops assembling a storage read's records at this budget, so a value
    /// below its read time makes a backlog drain one record per fetch.
    #[arg(long, env = CONSUMER_FETCH_WAIT, default_value = "100ms",
          value_parser = limits::FETCH_WAIT.parser())]
    pub fetch_wait: Duration,

    /// How long output-topic messages are gathered before they are produced, keeping only the
    /// latest value of each key, e.g. `1s`; `0s` produces each batch's messages as soon as it
    /// committed; 0s to 60s.
    #[arg(long, env = CONSUMER_PUBLISH_INTERVAL, default_value = "1s",
          value_parser = limits::PUBLISH_INTERVAL.parser())]
    pub publish_interval: Duration,

    /// Output topic of the per-vehicle summaries (key = VIN).
    #[arg(long, env = CONSUMER_SUMMARY_TOPIC, default_value = "telemetry.summary")]
    pub summary_topic: String,

    /// Output topic of the per-second and per-minute window metrics
    /// (key = `granularity|window_start`).
    #[arg(long, env = CONSUMER_METRICS_TOPIC, default_value = "telemetry.metrics")]
    pub metrics_topic: String,

    /// Output topic of the per-minute sensor histograms (key = `sensor|window_start`).
    #[arg(long, env = CONSUMER_HISTOGRAMS_TOPIC, default_value = "telemetry.histograms")]
    pub histograms_topic: String,
}

/// What a consumer replica's settings take from the stack's layout rather than from the config
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerWiring {
    /// The brokers' in-network bootstrap address.
    pub kafka_brokers: String,
    /// PostgreSQL's in-network host name.
    pub pg_host: String,
    /// Where the PostgreSQL password is handed over.
    pub pg_password_file: PathBuf,
    /// The replica's id.
    pub instance_id: String,
    /// The replica's index, below `consumer.replicas`.
    pub replica_index: u32,
}

impl ConsumerSettings {
    /// The settings `config` gives a consumer replica, wired by `wiring`.
    pub fn from_config(config: &Config, wiring: ConsumerWiring) -> Self {
        let (c, b) = (&config.consumer, &config.broker);
        Self {
            listen: listen_on(CONSUMER_PORT),
            kafka_brokers: wiring.kafka_brokers,
            kafka_topic: b.topic.clone(),
            kafka_dlq_topic: b.dlq_topic.clone(),
            group: c.group.clone(),
            instance_id: Some(wiring.instance_id),
            replicas: c.replicas,
            replica_index: wiring.replica_index,
            pg_host: wiring.pg_host,
            pg_port: POSTGRES_PORT,
            pg_user: config.postgres.user.clone(),
            pg_database: config.postgres.database.clone(),
            pg_password_file: Some(wiring.pg_password_file),
            batch_max_records: c.batch_max_records,
            batch_max_wait: c.batch_max_wait,
            fetch_wait: c.fetch_wait,
            publish_interval: c.publish_interval,
            summary_topic: b.summary_topic.clone(),
            metrics_topic: b.metrics_topic.clone(),
            histograms_topic: b.histograms_topic.clone(),
        }
    }

    /// Checks every bounded setting and that the replica index lies below the replica count.
    /// (`batch_max_records` is checked by its type.)
    pub fn validate(&self) -> Result<(), SettingsError> {
        limits::CONSUMER_REPLICAS.check(CONSUMER_REPLICAS, self.replicas)?;
        self.check_replica_index()?;
        limits::BATCH_MAX_WAIT.check(CONSUMER_BATCH_MAX_WAIT, self.batch_max_wait)?;
        limits::FETCH_WAIT.check(CONSUMER_FETCH_WAIT, self.fetch_wait)?;
        limits::PUBLISH_INTERVAL.check(CONSUMER_PUBLISH_INTERVAL, self.publish_interval)
    }

    /// The replica index, checked against the replica count.
    pub fn check_replica_index(&self) -> Result<u32, SettingsError> {
        if self.replica_index < self.replicas {
            Ok(self.replica_index)
        } else {
            Err(SettingsError::Invalid {
                var: CONSUMER_REPLICA_INDEX,
                reason: format!(
                    "{CONSUMER_REPLICA_INDEX} (--replica-index) is {}, but {CONSUMER_REPLICAS} (--replicas) is {}: the index must be below the count",
                    self.replica_index, self.replicas
                ),
            })
        }
    }

    /// `host:port/database` of PostgreSQL, for messages.
    pub fn pg_target(&self) -> String {
        format!("{}:{}/{}", self.pg_host, self.pg_port, self.pg_database)
    }

    /// The environment that gives a container these settings.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (CONSUMER_LISTEN, self.listen.to_string()),
            (KAFKA_BROKERS, self.kafka_brokers.clone()),
            (KAFKA_TOPIC, self.kafka_topic.clone()),
            (KAFKA_DLQ_TOPIC, self.kafka_dlq_topic.clone()),
            (CONSUMER_GROUP, self.group.clone()),
            (CONSUMER_REPLICAS, self.replicas.to_string()),
            (CONSUMER_REPLICA_INDEX, self.replica_index.to_string()),
            (PG_HOST, self.pg_host.clone()),
            (PG_PORT, self.pg_port.to_string()),
            (PG_USER, self.pg_user.clone()),
            (PG_DATABASE, self.pg_database.clone()),
            (
                CONSUMER_BATCH_MAX_RECORDS,
                self.batch_max_records.to_string(),
            ),
            (CONSUMER_BATCH_MAX_WAIT, duration_text(self.batch_max_wait)),
            (CONSUMER_FETCH_WAIT, duration_text(self.fetch_wait)),
            (
                CONSUMER_PUBLISH_INTERVAL,
                duration_text(self.publish_interval),
            ),
            (CONSUMER_SUMMARY_TOPIC, self.summary_topic.clone()),
            (CONSUMER_METRICS_TOPIC, self.metrics_topic.clone()),
            (CONSUMER_HISTOGRAMS_TOPIC, self.histograms_topic.clone()),
        ];
        if let Some(id) = &self.instance_id {
            env.push((CONSUMER_INSTANCE_ID, id.clone()));
        }
        if let Some(path) = &self.pg_password_file {
            env.push((PG_PASSWORD_FILE, path.display().to_string()));
        }
        env
    }
}
