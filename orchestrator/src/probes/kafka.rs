//! Kafka readiness: a metadata request must list at least one broker; then the stack's topics
//! are created (the broker does not create topics by itself).
//! Plus the watermarks of a topic, read from the host.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::ProbeError;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "5000")
        .set("log_level", "3");
    config
}

/// Ok with the number of brokers when a Metadata request sent to `address` itself lists at
/// least one. The request is written on the wire (Metadata v1, no topics) rather than through a
/// client library: a client follows the broker's advertised address (e.g. a name inside the
/// stack network that the host cannot resolve), and the probe must ask this very broker.
pub async fn kafka_metadata(address: &str) -> Result<usize, ProbeError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ProbeError::new(format!("metadata from {address}: {what}: {e}"))
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| failed("connect", &e))?;
        stream
            .write_all(&metadata_request(CORRELATION_ID))
            .await
            .map_err(|e| failed("send", &e))?;
        let size = stream
            .read_i32()
            .await
            .map_err(|e| failed("read the answer", &e))?;
        if !(8..=1 << 20).contains(&size) {
            return Err(failed("answer size", &size));
        }
        let mut body = vec![0; size as usize];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| failed("read the answer", &e))?;
        metadata_brokers(&body).map_err(|e| failed("answer", &e))
    };
    match tokio::time::timeout(Duration::from_secs(3), exchange).await {
        Ok(Ok(0)) => Err(ProbeError::new(format!(
            "metadata from {address} lists no broker"
        ))),
        Ok(result) => result,
        Err(_) => Err(ProbeError::new(format!(
            "metadata from {address}: no answer in 3 s"
        ))),
    }
}

/// The correlation id of the probe's request.
const CORRELATION_ID: i32 = 0x666c_7400;

/// A size-prefixed Metadata v1 request (api key 3) for no topics, client id `fleet-probe`.
fn metadata_request(correlation_id: i32) -> Vec<u8> {
    let client = b"fleet-probe";
    let mut body = Vec::new();
    body.extend(3i16.to_be_bytes()); // api key: Metadata
    body.extend(1i16.to_be_bytes()); // api version
    body.extend(correlation_id.to_be_bytes());
    body.extend((client.len() as i16).to_be_bytes());
    body.extend(client);
    body.extend(0i32.to_be_bytes()); // topics: an empty array asks for none
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend(body);
    request
}

/// The number of brokers in a Metadata v1 answer (after its size prefix).
fn metadata_brokers(body: &[u8]) -> Result<usize, String> {
    let int = |at: usize| -> Result<i32, String> {
        body.get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("{} bytes are too short", body.len()))
    };
    let correlation = int(0)?;
    if correlation != CORRELATION_ID {
        return Err(format!(
            "correlation id {correlation}, expected {CORRELATION_ID}"
        ));
    }
    let brokers = int(4)?;
    usize::try_from(brokers).map_err(|_| format!("broker count {brokers}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_sized_metadata_v1_for_no_topics() {
        let request = metadata_request(7);
        let size = i32::from_be_bytes(request[..4].try_into().unwrap()) as usize;
        assert_eq!(size, request.len() - 4);
        assert_eq!(&request[4..8], &[0, 3, 0, 1], "api key 3, version 1");
        assert_eq!(&request[8..12], &7i32.to_be_bytes());
        assert_eq!(&request[request.len() - 4..], &[0, 0, 0, 0], "no topics");
    }

    #[test]
    fn the_answer_counts_brokers_and_checks_the_correlation_id() {
        let mut answer = CORRELATION_ID.to_be_bytes().to_vec();
        answer.extend(2i32.to_be_bytes());
        assert_eq!(metadata_brokers(&answer), Ok(2));
        let mut other = 1i32.to_be_bytes().to_vec();
        other.extend(2i32.to_be_bytes());
        assert!(
            metadata_brokers(&other)
                .unwrap_err()
                .contains("correlation")
        );
        assert!(metadata_brokers(&answer[..6]).is_err());
    }
}
