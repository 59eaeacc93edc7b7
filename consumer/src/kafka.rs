//! The Kafka side: consumer and dead-letter producer settings, the consumer's explicit
//! assignment (no group coordinator: [`crate::ownership`] decides the partitions, PostgreSQL
//! holds the offsets), the broker probe behind `/readyz` that also reports the partition count,
//! and the offset commit to Kafka after a PostgreSQL commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use fleet_common::fetch::apply_fetch_settings;
use fleet_common::producer::ReplaceableProducer;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::batch::Record;
use crate::health::Health;

/// Consecutive failed broker probes after which the broker counts as unreachable.
pub const BROKER_FAILURES_FOR_OUTAGE: u32 = 2;

/// The consumer type of this service.
pub type FleetConsumer = StreamConsumer<FleetContext>;

/// Why a Kafka client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// Creating a client failed (bad setting).
    #[error("creating the Kafka {what} for {brokers}: {source}")]
    Create {
        /// `consumer` or `producer`.
        what: &'static str,
        /// Bootstrap servers.
        brokers: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// Who the consumer is towards the broker.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Group id: the key of the offsets committed to Kafka (a copy of those in PostgreSQL, for
    /// tools and for a resume when PostgreSQL holds none). The consumer never joins the group.
    pub group: String,
    /// This replica's id, part of the client id.
    pub instance_id: String,
    /// librdkafka `debug` contexts, if any.
    pub debug: Option<String>,
    /// Longest time the broker holds a fetch that found nothing (`fetch.wait.max.ms`).
    pub fetch_wait: std::time::Duration,
}

/// The consumer's librdkafka settings: explicit assignment, no automatic commit or offset store.
pub fn consumer_config(s: &ConsumerSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("client.id", format!("fleet-consumer-{}", s.instance_id))
        .set("group.id", &s.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    apply_fetch_settings(&mut c, s.fetch_wait);
    if let Some(debug) = &s.debug {
        c.set("debug", debug);
    }
    c
}

/// The dead-letter producer's own librdkafka settings; [`ReplaceableProducer`] adds the ones
/// that make it idempotent (acks=all, gapless, a fresh
/// producer after a fatal error). The caller bounds its own wait for a delivery.
pub fn producer_config(brokers: &str, instance_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", format!("fleet-consumer-dlq-{instance_id}"))
        .set("linger.ms", "5");
    c
}

/// The analytics publisher's settings: those of [`producer_config`] under its own client id,
/// a separate producer so that output topics can never hold up dead letters.
pub fn publisher_config(brokers: &str, instance_id: &str) -> ClientConfig {
    let mut c = producer_config(brokers, instance_id);
    c.set(
        "client.id",
        format!("fleet-consumer-analytics-{instance_id}"),
    );
    c
}

/// Creates the analytics publisher's producer.
pub fn publisher(brokers: &str, instance_id: &str) -> Result<ReplaceableProducer, KafkaSetupError> {
    replaceable(
        publisher_config(brokers, instance_id),
        "analytics producer",
        brokers,
    )
}

/// A [`ReplaceableProducer`] with `config`.
fn replaceable(
    config: ClientConfig,
    what: &'static str,
    brokers: &str,
) -> Result<ReplaceableProducer, KafkaSetupError> {
    ReplaceableProducer::new(config).map_err(|e| KafkaSetupError::Create {
        what,
        brokers: brokers.to_owned(),
        source: e.source,
    })
}

/// The consumer's context: logs client errors and the outcome of offset commits to Kafka.
#[derive(Debug, Default)]
pub struct FleetContext;

impl ClientContext for FleetContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

impl ConsumerContext for FleetContext {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                tracing::debug!(offsets = ?offsets.to_topic_map(), "offsets committed to Kafka")
            }
            Err(e) => {
                tracing::warn!(error = %e, "committing offsets to Kafka failed (PostgreSQL holds them)")
            }
        }
    }
}

/// Creates the consumer; it reads nothing until it is assigned partitions.
pub fn create(settings: &ConsumerSettings) -> Result<FleetConsumer, KafkaSetupError> {
    consumer_config(settings)
        .create_with_context(FleetContext)
        .map_err(|source| KafkaSetupError::Create {
            what: "consumer",
            brokers: settings.brokers.clone(),
            source,
        })
}

/// Creates the dead-letter producer.
pub fn producer(brokers: &str, instance_id: &str) -> Result<ReplaceableProducer, KafkaSetupError> {
    replaceable(producer_config(brokers, instance_id), "producer", brokers)
}

/// The assignment list for `partitions`: the stored offset where there is one, else the
/// offset committed in Kafka (never ahead of PostgreSQL's) or `auto.offset.reset`.
pub fn assignment(
    topic: &str,
    partitions: &[i32],
    stored: &BTreeMap<i32, i64>,
) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let offset = stored
            .get(&p)
            .map_or(Offset::Invalid, |&o| Offset::Offset(o));
        tpl.add_partition_offset(topic, p, offset)?;
    }
    Ok(tpl)
}

/// A list of `topic` with the given next offsets, for commit.
pub fn offsets_list(topic: &str, offsets: &BTreeMap<i32, i64>) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    Ok(tpl)
}

/// Commits offsets to Kafka without waiting; PostgreSQL already holds them, Kafka's copy only
/// speeds up a resume when PostgreSQL has none.
pub fn commit_async(consumer: &FleetConsumer, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let result =
        offsets_list(topic, offsets).and_then(|tpl| consumer.commit(&tpl, CommitMode::Async));
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not commit offsets to Kafka (PostgreSQL holds them)");
    }
}

/// Copies a received message.
pub fn record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// Asks the broker for the topic's metadata every `every` until `stop` changes, records
/// whether it answers (unreachable after [`BROKER_FAILURES_FOR_OUTAGE`] failures in a row;
/// reachable again at the first answer), and publishes the topic's partition count to `partitions` (kept when
/// the broker does not answer). Holds the consumer only weakly, so it never delays its close.
pub async fn probe_broker(
    consumer: Weak<FleetConsumer>,
    topic: String,
    health: Arc<Health>,
    partitions: watch::Sender<Option<i32>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = BROKER_FAILURES_FOR_OUTAGE;
    loop {
        let Some(strong) = consumer.upgrade() else {
            return;
        };
        let topic_for_probe = topic.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let count = match strong.fetch_metadata(Some(&topic_for_probe), Duration::from_secs(3))
            {
                Ok(md) => md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic_for_probe && t.error().is_none())
                    .map(|t| t.partitions().len() as i32)
                    .filter(|&n| n > 0),
                Err(_) => None,
            };
            drop(strong);
            count
        });
        let count = probe.await.unwrap_or(None);
        failures = if count.is_some() { 0 } else { failures + 1 };
        // One slow answer on a loaded machine is not an outage: two failed probes in a row are.
        let ok = failures < BROKER_FAILURES_FOR_OUTAGE;
        if let Some(count) = count {
            partitions.send_if_modified(|known| {
                let changed = *known != Some(count);
                *known = Some(count);
                changed
            });
        }
        if ok != health.snapshot().broker_ok {
            tracing::info!(broker_ok = ok, "broker probe");
        }
        health.set_broker_ok(ok);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConsumerSettings {
        ConsumerSettings {
            brokers: "b:9092".into(),
            group: "fleet-consumer".into(),
            instance_id: "c-1".into(),
            debug: None,
            fetch_wait: std::time::Duration::from_millis(100),
        }
    }

    #[test]
    fn consumer_settings_follow_the_design() {
        let c = consumer_config(&settings());
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("group.id"), Some("fleet-consumer"));
        assert_eq!(c.get("client.id"), Some("fleet-consumer-c-1"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        // No group membership: the coordinator never holds the partitions.
        assert_eq!(c.get("group.instance.id"), None);
        // Nothing adds hundreds of milliseconds to a record's way at low load.
        for key in [
            "fetch.wait.max.ms",
            "fetch.queue.backoff.ms",
            "fetch.error.backoff.ms",
        ] {
            let ms: u64 = c.get(key).unwrap().parse().unwrap();
            assert!(ms <= 100, "{key} = {ms}");
        }
        assert_eq!(c.get("fetch.min.bytes"), Some("1"));
    }

    #[test]
    fn publisher_and_dead_letters_have_their_own_client_ids() {
        let c = publisher_config("b:9092", "c-1");
        assert_eq!(c.get("client.id"), Some("fleet-consumer-analytics-c-1"));
        assert_eq!(
            producer_config("b:9092", "c-1").get("client.id"),
            Some("fleet-consumer-dlq-c-1")
        );
    }

    #[test]
    fn assignment_uses_stored_offsets_where_known() {
        let stored = BTreeMap::from([(0, 42), (2, 7)]);
        let tpl = assignment("telemetry", &[0, 1, 2], &stored).unwrap();
        let offsets: Vec<(i32, Offset)> = tpl
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        assert_eq!(
            offsets,
            vec![
                (0, Offset::Offset(42)),
                (1, Offset::Invalid),
                (2, Offset::Offset(7))
            ]
        );
    }
}
