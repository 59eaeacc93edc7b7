//! The real [`Broker`]: one shared idempotent producer (acks=all) for every request, replaced
//! by a fresh one (a new producer id) when librdkafka declares it unusable.
//! Metadata and watermark requests are blocking librdkafka calls and run on tokio's blocking
//! pool.

use std::time::Duration;

use fleet_common::producer::ReplaceableProducer;
use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureRecord, Producer};

use crate::broker::{Appended, Broker, BrokerError, PartitionWatermarks};

/// How long a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// A Kafka topic reached through one idempotent producer at a time.
#[derive(Clone)]
pub struct KafkaBroker {
    producer: ReplaceableProducer,
    topic: String,
}

impl KafkaBroker {
    /// Creates the producer (see [`ReplaceableProducer`] for its settings and why). librdkafka
    /// connects lazily, so this fails only on bad settings.
    ///
    /// How long a request waits for the acknowledgement is the HTTP side's produce timeout;
    /// a record answered 503 may therefore still reach the topic later, and the vehicle sends
    /// it again with the same `event_id`, which the consumer stores once. The queue stays
    /// bounded by librdkafka's `queue.buffering.max.messages`; beyond it requests get 503 at
    /// once.
    ///
    /// `linger` is how long librdkafka waits for more records before it sends a batch;
    /// `max_in_flight` how many produce requests it keeps in flight per broker connection.
    pub fn new(
        brokers: &str,
        topic: &str,
        linger: Duration,
        max_in_flight: u32,
    ) -> Result<Self, BrokerError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("client.id", "fleet-ingest")
            .set("linger.ms", linger_ms(linger));
        fleet_common::producer::set_max_in_flight(&mut config, max_in_flight);
        let producer = ReplaceableProducer::new(config)
            .map_err(|e| BrokerError::new("creating the producer", topic, e))?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    pub async fn flush(&self, timeout: Duration) -> Result<(), BrokerError> {
        let producer = self.producer.current();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| BrokerError::new("flushing the producer", &topic, e))?
            .map_err(|e| BrokerError::new("flushing the producer", &topic, e))
    }

    /// The producer to send with, replaced first if librdkafka declared it unusable.
    fn usable(
        &self,
        operation: &'static str,
    ) -> Result<rdkafka::producer::FutureProducer, BrokerError> {
        self.producer
            .usable()
            .map_err(|e| BrokerError::new(operation, &self.topic, e))
    }
}

/// `linger` as librdkafka's `linger.ms`, which takes fractions of a millisecond.
fn linger_ms(linger: Duration) -> String {
    format!("{}", linger.as_secs_f64() * 1e3)
}

/// Runs a blocking librdkafka call on the blocking pool.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    topic: String,
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, BrokerError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result.map_err(|e| BrokerError::new(operation, &topic, e)),
        Err(join) => Err(BrokerError::new(operation, &topic, join)),
    }
}

impl Broker for KafkaBroker {
    fn append(
        &self,
        key: &str,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Appended, BrokerError>> {
        const OPERATION: &str = "producing a record";
        let producer = match self.usable(OPERATION) {
            Ok(producer) => producer,
            Err(e) => return futures::future::ready(Err(e)).boxed(),
        };
        let record = FutureRecord::to(&self.topic).key(key).payload(&payload);
        // Queued right here, in call order; the future only waits for the acknowledgement.
        match producer.send_result(record) {
            Ok(delivery) => {
                let topic = self.topic.clone();
                async move {
                    match delivery.await {
                        Ok(Ok(d)) => Ok(Appended {
                            partition: d.partition,
                            offset: d.offset,
                        }),
                        Ok(Err((e, _message))) => Err(BrokerError::new(OPERATION, &topic, e)),
                        Err(_canceled) => Err(BrokerError::new(
                            OPERATION,
                            &topic,
                            "the producer shut down before the broker answered",
                        )),
                    }
                }
                .boxed()
            }
            Err((e, _record)) => {
                futures::future::ready(Err(BrokerError::new(OPERATION, &self.topic, e))).boxed()
            }
        }
    }

    fn watermarks(&self) -> BoxFuture<'static, Result<Vec<PartitionWatermarks>, BrokerError>> {
        let producer = self.producer.current();
        let topic = self.topic.clone();
        async move {
            let partitions = {
                let (producer, name) = (producer.clone(), topic.clone());
                blocking("reading metadata", topic.clone(), move || {
                    let metadata = producer
                        .client()
                        .fetch_metadata(Some(&name), METADATA_TIMEOUT)?;
                    Ok(partition_ids(&metadata, &name))
                })
                .await??
            };
            let name = topic.clone();
            blocking("reading watermarks", topic, move || {
                partitions
                    .into_iter()
                    .map(|partition| {
                        let (low, high) = producer.client().fetch_watermarks(
                            &name,
                            partition,
                            METADATA_TIMEOUT,
                        )?;
                        Ok(PartitionWatermarks {
                            partition,
                            low,
                            high,
                        })
                    })
                    .collect()
            })
            .await
        }
        .boxed()
    }

    fn queue_depth(&self) -> u64 {
        u64::try_from(self.producer.current().in_flight_count()).unwrap_or(0)
    }

    fn producer_replacements(&self) -> u64 {
        self.producer.replacements()
    }

    fn check_ready(&self) -> BoxFuture<'static, Result<(), BrokerError>> {
        // A producer with a fatal error is replaced here too, so an idle ingest recovers
        // as soon as its readiness is probed.
        let usable = self.usable("producing");
        let topic = self.topic.clone();
        async move {
            let producer = usable?;
            let name = topic.clone();
            blocking("reading metadata", topic, move || {
                let metadata = producer
                    .client()
                    .fetch_metadata(Some(&name), METADATA_TIMEOUT)?;
                Ok(partition_ids(&metadata, &name))
            })
            .await?
            .map(|_| ())
        }
        .boxed()
    }
}

/// The partitions of `topic` in `metadata`, or why there are none.
pub(crate) fn partition_ids(
    metadata: &rdkafka::metadata::Metadata,
    topic: &str,
) -> Result<Vec<i32>, BrokerError> {
    const OPERATION: &str = "reading metadata";
    let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(BrokerError::new(
            OPERATION,
            topic,
            "the broker did not list the topic",
        ));
    };
    if let Some(error) = entry.error() {
        return Err(BrokerError::new(
            OPERATION,
            topic,
            KafkaError::MetadataFetch(error.into()),
        ));
    }
    if entry.partitions().is_empty() {
        return Err(BrokerError::new(
            OPERATION,
            topic,
            "the topic has no partitions",
        ));
    }
    Ok(entry.partitions().iter().map(|p| p.id()).collect())
}
