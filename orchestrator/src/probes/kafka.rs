//! Kafka readiness: a metadata request must list at least one broker; then the stack's topics
//! are created (the broker does not create topics by itself).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::ProbeError;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "5000")
        .set("log_level", "3");
    config
}

/// Ok with the number of brokers when a metadata request to `bootstrap` lists at least one.
pub async fn kafka_metadata(bootstrap: &str) -> Result<usize, ProbeError> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap)
            .create()
            .map_err(|e| ProbeError::new(format!("Kafka client for {bootstrap}: {e}")))?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(3))
            .map_err(|e| ProbeError::new(format!("metadata from {bootstrap}: {e}")))?;
        match metadata.brokers().len() {
            0 => Err(ProbeError::new(format!(
                "metadata from {bootstrap} lists no broker"
            ))),
            n => Ok(n),
        }
    })
    .await
    .map_err(|e| ProbeError::new(format!("metadata task: {e}")))?
}

/// Creates `topics` (name, partitions) unless they exist.
pub async fn create_topics(bootstrap: &str, topics: &[(String, i32)]) -> Result<(), ProbeError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .map_err(|e| ProbeError::new(format!("Kafka admin client for {bootstrap}: {e}")))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|e| ProbeError::new(format!("create topics on {bootstrap}: {e}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(ProbeError::new(format!("create topic {topic}: {code}")));
            }
        }
    }
    Ok(())
}

/// The low and high watermark of every partition of `topic`: `(partition, low, high)`
/// (blocking; call from a blocking task).
pub fn partition_ranges(bootstrap: &str, topic: &str) -> Result<Vec<(i32, i64, i64)>, ProbeError> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .map_err(|e| ProbeError::new(format!("Kafka client for {bootstrap}: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(3))
        .map_err(|e| ProbeError::new(format!("metadata of {topic}: {e}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions
        .into_iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(3))
                .map(|(low, high)| (p, low, high))
                .map_err(|e| ProbeError::new(format!("watermarks of {topic}/{p}: {e}")))
        })
        .collect()
}

/// The high watermark of every partition of `topic` (blocking; call from a blocking task).
pub fn partition_watermarks(bootstrap: &str, topic: &str) -> Result<Vec<(i32, i64)>, ProbeError> {
    partition_ranges(bootstrap, topic)
        .map(|ranges| ranges.into_iter().map(|(p, _, high)| (p, high)).collect())
}
