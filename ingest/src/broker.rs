//! What the HTTP side needs from the broker, as a small trait: append a record, read the topic's
//! watermarks, check readiness. [`crate::producer::KafkaBroker`] implements it with rdkafka;
//! unit tests implement it with a fake.

use futures::future::BoxFuture;
use serde::Serialize;

/// Where the broker stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

/// The offsets of one partition: `high` is the offset the next record will get, so the sum of
/// `high` over all partitions counts every record ever written to the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionWatermarks {
    /// Partition number.
    pub partition: i32,
    /// Oldest offset still stored.
    pub low: i64,
    /// Offset of the next record.
    pub high: i64,
}

/// A broker operation that failed, naming the operation and the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on topic `{topic}` failed: {reason}")]
pub struct BrokerError {
    /// What was attempted, e.g. `producing a record`.
    pub operation: &'static str,
    /// The topic.
    pub topic: String,
    /// What went wrong, in words.
    pub reason: String,
}

impl BrokerError {
    /// A new error for `operation` on `topic`.
    pub fn new(operation: &'static str, topic: &str, reason: impl ToString) -> Self {
        Self {
            operation,
            topic: topic.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The broker as seen by the HTTP handlers. One implementation is shared by all requests.
pub trait Broker: Send + Sync + 'static {
    /// Queues one record and returns a future that resolves once the broker acknowledged it.
    ///
    /// The record is queued before this returns, so records appended one after the other keep
    /// their order within a partition.
    fn append(
        &self,
        key: &str,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Appended, BrokerError>>;

    /// The watermarks of every partition of the topic.
    fn watermarks(&self) -> BoxFuture<'static, Result<Vec<PartitionWatermarks>, BrokerError>>;

    /// Records queued or in flight that the broker has not acknowledged yet.
    fn queue_depth(&self) -> u64;

    /// How many times the producer was replaced after a fatal error (0: never).
    fn producer_replacements(&self) -> u64;

    /// Succeeds when a metadata request for the topic answers in time and lists partitions.
    fn check_ready(&self) -> BoxFuture<'static, Result<(), BrokerError>>;
}
