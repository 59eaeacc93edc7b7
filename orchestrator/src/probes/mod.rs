//! Protocol-level readiness probes, independent of any image: ZooKeeper four-letter words, a
//! Kafka metadata request, a PostgreSQL query, an HTTP GET. Plus the one-time setup that
//! follows readiness (topics, schema).

mod http;
mod kafka;
mod postgres;
mod zookeeper;

pub use http::http_ok;
pub use kafka::{create_topics, kafka_metadata, partition_ranges, partition_watermarks};
pub use postgres::{
    Logins as PostgresLogins, connect as postgres_connect, set_up as set_up_postgres,
};
pub use zookeeper::zookeeper_ruok;

/// A probe that did not pass (yet): what it saw.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

impl ProbeError {
    /// A probe failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
