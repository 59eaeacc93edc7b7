//! The real [`Broker`]: shared idempotent producers (acks=all) for every request, each replaced
//! by a fresh one (a new producer id) when librdkafka declares it unusable. Records reach them
//! in rounds ([`fleet_common::rounds`]): the records of every request that arrives while a
//! produce request is in flight leave together in the next one. Rounds of fewer than
//! `LARGE_ROUND` records go to a producer with a short linger, larger ones to a second
//! producer whose linger covers queuing them, so that every round leaves in one request.
//! Metadata and watermark requests are blocking librdkafka calls and run on tokio's blocking
//! pool.

use std::time::Duration;

use fleet_common::producer::ReplaceableProducer;
use fleet_common::rounds::{KafkaHandover, Outgoing, RoundLimits, Rounds};
use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use crate::broker::{Appended, Broker, BrokerError, PartitionWatermarks};

/// How long a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// librdkafka's `linger.ms` for rounds of fewer than [`LARGE_ROUND`] records: such a round is
/// queued whole within it (a hundred records take about 0.1 ms), so it leaves as one produce
/// request. The batching itself is the rounds'.
const HANDOVER_LINGER_MS: &str = "0.2";

/// Rounds of at least this many records go to the second producer
/// ([`fleet_common::rounds::KafkaHandover`] says why).
const LARGE_ROUND: usize = 128;

/// The second producer's `linger.ms`: it covers queuing a round of up to 2,000 records on a
/// machine under load, so that a large round leaves in one produce request.
const LARGE_ROUND_LINGER_MS: &str = "5";

/// A Kafka topic reached through two idempotent producers, one round at a time.
#[derive(Clone)]
pub struct KafkaBroker {
    producer: ReplaceableProducer,
    rounds: Rounds,
    topic: String,
}

impl KafkaBroker {
    /// Creates the producer (see [`ReplaceableProducer`] for its settings and why). librdkafka
    /// connects lazily, so this fails only on bad settings.
    ///
    /// How long a request waits for the acknowledgement is the HTTP side's produce timeout;
    /// a record answered 503 may therefore still reach the topic later, and the vehicle sends
    /// it again with the same `event_id`, which the consumer stores once.
    ///
    /// The queue stays bounded: beyond [`RoundLimits::queued`] records waiting for the broker,
    /// requests get 503 at once.
    ///
    /// `linger` is how long a record that arrives while no produce request is in flight waits
    /// for more before it is sent; `max_in_flight` how many produce requests librdkafka may keep
    /// in flight per broker connection (with idempotence it keeps one per partition).
    /// Starts the dispatch loop of the rounds, so call it within a tokio runtime.
    pub fn new(
        brokers: &str,
        topic: &str,
        linger: Duration,
        max_in_flight: u32,
    ) -> Result<Self, BrokerError> {
        let limits = RoundLimits {
            linger,
            ..RoundLimits::default()
        };
        let producer = |client: &str, linger_ms: &str| {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", brokers)
                .set("client.id", client)
                .set("linger.ms", linger_ms)
                // A full round is ready as soon as its last record is queued.
                .set("batch.num.messages", limits.records.to_string());
            fleet_common::producer::set_max_in_flight(&mut config, max_in_flight);
            ReplaceableProducer::new(config)
                .map_err(|e| BrokerError::new("creating the producer", topic, e))
        };
        let small = producer("fleet-ingest", HANDOVER_LINGER_MS)?;
        let large = producer("fleet-ingest-large-rounds", LARGE_ROUND_LINGER_MS)?;
        let rounds = Rounds::start(
            KafkaHandover::new(small.clone()).with_large_rounds(large, LARGE_ROUND),
            limits,
        );
        Ok(Self {
            producer: small,
            rounds,
            topic: topic.to_owned(),
        })
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    ///
    /// Every record reaches librdkafka through the rounds and counts as unanswered until its
    /// delivery report arrived, so once the rounds are drained librdkafka holds nothing of ours.
    pub async fn flush(&self, timeout: Duration) -> Result<(), BrokerError> {
        if self.rounds.drained(timeout).await {
            return Ok(());
        }
        Err(BrokerError::new(
            "flushing the producer",
            &self.topic,
            format!(
                "{} records still unacknowledged after {timeout:?}",
                self.rounds.unanswered()
            ),
        ))
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
        let answer = self.rounds.send(Outgoing {
            topic: self.topic.clone(),
            key: key.as_bytes().to_vec(),
            payload,
        });
        let topic = self.topic.clone();
        // Queued right here, in call order; the future only waits for the acknowledgement.
        async move {
            answer
                .await
                .map(|d| Appended {
                    partition: d.partition,
                    offset: d.offset,
                })
                .map_err(|e| BrokerError::new(OPERATION, &topic, e))
        }
        .boxed()
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
        self.rounds.unanswered()
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
