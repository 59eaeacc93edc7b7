//! The Kafka side: consumer and dead-letter producer settings, the rebalance callback that hands
//! new assignments to the consumer loop (so it can resume from the offsets in PostgreSQL), the
//! broker probe behind `/readyz`, and the offset commit after a PostgreSQL commit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use fleet_common::producer::ReplaceableProducer;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::{Notify, watch};

use crate::batch::Record;
use crate::health::Health;

/// `max.poll.interval.ms`: short, as DESIGN.md asks (a wedged consumer leaves the group
/// quickly); the loop polls far more often (every PostgreSQL operation is bounded by 5 s).
pub const MAX_POLL_INTERVAL_MS: u32 = 15_000;
/// `session.timeout.ms`: as long as librdkafka allows (it must not exceed
/// `max.poll.interval.ms`). Tansu 0.6.0 expires members by this timeout but refreshes a
/// member's liveness only on heartbeats, not on JoinGroup/SyncGroup, and holds each JoinGroup
/// and SyncGroup of a static member for 3 s: a member that spends longer than this in join/sync
/// rounds is expired at its first heartbeat. With 6 s, groups churned and got stuck.
pub const SESSION_TIMEOUT_MS: u32 = MAX_POLL_INTERVAL_MS;
/// `heartbeat.interval.ms`.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1_000;

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
    /// Subscribing failed.
    #[error("subscribing to topic {topic}: {source}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// Identity of the consumer in its group.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Group id.
    pub group: String,
    /// `group.instance.id` (static membership).
    pub instance_id: String,
    /// Topic to read.
    pub topic: String,
    /// librdkafka `debug` contexts, if any.
    pub debug: Option<String>,
}

/// The consumer's librdkafka settings.
pub fn consumer_config(s: &ConsumerSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("client.id", format!("fleet-consumer-{}", s.instance_id))
        .set("group.id", &s.group)
        .set("group.instance.id", &s.instance_id)
        // Eager protocol: every rebalance revokes everything, then assigns.
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS.to_string())
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS.to_string())
        .set("enable.partition.eof", "false");
    if let Some(debug) = &s.debug {
        c.set("debug", debug);
    }
    c
}

/// The dead-letter producer's own librdkafka settings; [`ReplaceableProducer`] adds the ones
/// that make it idempotent and safe with Tansu (acks=all, no local epoch bumps, a fresh
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

/// What the rebalance callback left for the consumer loop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RebalanceNews {
    /// Partitions were revoked: the open batch must be dropped (its records will be read
    /// again from the stored offsets by whoever owns them next).
    pub revoked: bool,
    /// Partitions assigned and waiting for the loop to assign them with their stored offsets.
    pub assign: Option<Vec<i32>>,
}

/// The consumer's context. Assignments are not applied in the callback: they are handed to the
/// consumer loop, which looks up the stored offsets in PostgreSQL and then assigns (librdkafka
/// keeps heartbeating meanwhile). Revocations are applied at once.
pub struct FleetContext {
    topic: String,
    news: Mutex<RebalanceNews>,
    notify: Arc<Notify>,
    closing: AtomicBool,
    health: Arc<Health>,
}

impl FleetContext {
    /// A context for a consumer of `topic`.
    pub fn new(topic: &str, health: Arc<Health>) -> Self {
        Self {
            topic: topic.to_owned(),
            news: Mutex::new(RebalanceNews::default()),
            notify: Arc::new(Notify::new()),
            closing: AtomicBool::new(false),
            health,
        }
    }

    /// Woken after every rebalance event.
    pub fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Takes the news since the last call.
    pub fn take_news(&self) -> RebalanceNews {
        std::mem::take(&mut *self.news.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// From now on assignments are applied in the callback (the loop no longer runs).
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for FleetContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

impl ConsumerContext for FleetContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions = self.partitions(tpl);
                tracing::info!(?partitions, "partitions assigned");
                if self.closing.load(Ordering::Relaxed) {
                    let result = if cooperative {
                        consumer.incremental_assign(tpl)
                    } else {
                        consumer.assign(tpl)
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "assigning partitions while closing");
                    }
                    return;
                }
                self.news
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .assign = Some(partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = self.partitions(tpl);
                tracing::info!(
                    ?partitions,
                    lost = consumer.assignment_lost(),
                    "partitions revoked"
                );
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "unassigning revoked partitions");
                }
                self.health.set_assigned(0);
                let mut news = self.news.lock().unwrap_or_else(PoisonError::into_inner);
                news.revoked = true;
                news.assign = None;
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                return;
            }
        }
        self.notify.notify_one();
    }

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

/// Creates the consumer and subscribes it to its topic.
pub fn subscribe(
    settings: &ConsumerSettings,
    context: FleetContext,
) -> Result<FleetConsumer, KafkaSetupError> {
    let consumer: FleetConsumer = consumer_config(settings)
        .create_with_context(context)
        .map_err(|source| KafkaSetupError::Create {
            what: "consumer",
            brokers: settings.brokers.clone(),
            source,
        })?;
    consumer
        .subscribe(&[&settings.topic])
        .map_err(|source| KafkaSetupError::Subscribe {
            topic: settings.topic.clone(),
            source,
        })?;
    Ok(consumer)
}

/// Creates the dead-letter producer.
pub fn producer(brokers: &str, instance_id: &str) -> Result<ReplaceableProducer, KafkaSetupError> {
    replaceable(producer_config(brokers, instance_id), "producer", brokers)
}

/// The assignment list for `partitions`: the stored offset where there is one, else the
/// offset committed in Kafka (or `auto.offset.reset`).
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
    }
}

/// Asks the broker for the topic's metadata every `every` until `stop` changes, and records
/// whether it answered. Holds the consumer only weakly, so it never delays its close.
pub async fn probe_broker(
    consumer: Weak<FleetConsumer>,
    topic: String,
    health: Arc<Health>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let Some(strong) = consumer.upgrade() else {
            return;
        };
        let topic_for_probe = topic.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let ok = match strong.fetch_metadata(Some(&topic_for_probe), Duration::from_secs(3)) {
                Ok(md) => md
                    .topics()
                    .iter()
                    .any(|t| t.name() == topic_for_probe && t.error().is_none()),
                Err(_) => false,
            };
            drop(strong);
            ok
        });
        let ok = probe.await.unwrap_or(false);
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
            topic: "telemetry".into(),
            debug: None,
        }
    }

    #[test]
    fn consumer_settings_follow_the_design() {
        let c = consumer_config(&settings());
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("group.instance.id"), Some("c-1"));
        assert_eq!(c.get("group.id"), Some("fleet-consumer"));
        assert_eq!(c.get("max.poll.interval.ms"), Some("15000"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
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

    #[test]
    fn rebalance_news_is_taken_once() {
        let ctx = FleetContext::new("telemetry", Arc::default());
        ctx.news.lock().unwrap().assign = Some(vec![1]);
        assert_eq!(ctx.take_news().assign, Some(vec![1]));
        assert_eq!(ctx.take_news(), RebalanceNews::default());
    }
}
