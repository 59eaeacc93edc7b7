//! An idempotent Kafka producer that is replaced when librdkafka declares it unusable.
//!
//! Settings, and why (Nisshi is the broker; see [`apply_settings`]):
//! - `acks=all`, `enable.idempotence=true`: an acknowledged record is held by the broker, and
//!   librdkafka's own retries never duplicate it.
//! - `max.in.flight.requests.per.connection`: [`DEFAULT_PRODUCER_MAX_IN_FLIGHT`] unless the
//!   caller set it (ingest's `ingest.producer_max_in_flight`), at most 5 with idempotence. In
//!   practice librdkafka keeps one produce request per partition in flight for an idempotent
//!   producer (confluentinc/librdkafka#4989); [`crate::rounds`] sends to it accordingly.
//!   Tansu 0.6.0 needed 1 (its storage panicked on a local epoch bump); Nisshi 0.8 handles the
//!   epoch bump, and the broker tests (`tests/broker.rs`: brokers killed and stopped under load)
//!   find every acknowledged record once in the topic with 5.
//! - `message.timeout.ms=0`: librdkafka never gives up on a record; callers bound their own wait.
//! - `socket.nagle.disable=true`: a request's last segment leaves at once instead of waiting
//!   for the broker's acknowledgement of the previous ones (the Java client's `TCP_NODELAY`).
//! - `enable.gapless.guarantee=true`: a broken sequence (the broker lost or rejected our
//!   producer state) is not "repaired" silently: librdkafka raises a fatal error, the records
//!   still queued fail (callers answer or retry them), and [`ReplaceableProducer::usable`]
//!   hands out a fresh producer, which asks the broker for a new producer id.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer, PurgeConfig};

use crate::settings::limits::DEFAULT_PRODUCER_MAX_IN_FLIGHT;

/// librdkafka's name of the in-flight setting.
const MAX_IN_FLIGHT: &str = "max.in.flight.requests.per.connection";

/// How long a retired producer may take to hand back its failed records when it is dropped.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Creating a producer failed (bad settings).
#[derive(Debug, thiserror::Error)]
#[error("creating the Kafka producer `{client}` failed: {source}")]
pub struct ProducerError {
    /// The producer's `client.id`.
    pub client: String,
    /// librdkafka's error.
    #[source]
    pub source: KafkaError,
}

/// One producer instance and its place in the sequence of replacements.
#[derive(Clone)]
struct Generation {
    /// Counts replacements; 0 is the producer created first.
    number: u64,
    /// The producer every caller of this generation shares.
    producer: FutureProducer,
}

/// One shared idempotent producer at a time, replaced when librdkafka declares it unusable.
#[derive(Clone)]
pub struct ReplaceableProducer {
    config: ClientConfig,
    current: Arc<RwLock<Generation>>,
}

impl ReplaceableProducer {
    /// Creates the first producer from `config` plus the settings this module explains
    /// (which override any given). librdkafka connects lazily, so this fails only on bad
    /// settings.
    pub fn new(mut config: ClientConfig) -> Result<Self, ProducerError> {
        apply_settings(&mut config);
        let producer = create(&config)?;
        Ok(Self {
            config,
            current: Arc::new(RwLock::new(Generation {
                number: 0,
                producer,
            })),
        })
    }

    /// The current producer, usable or not (for flushing, metadata and queue depth).
    pub fn current(&self) -> FutureProducer {
        self.generation().producer
    }

    /// How many times the producer was replaced.
    pub fn replacements(&self) -> u64 {
        self.generation().number
    }

    /// The producer to send with: the current one, or a fresh one when the current one has a
    /// fatal error. The unusable producer is retired on the blocking pool (its queue is purged,
    /// which fails the records' delivery futures), so call this from a tokio runtime.
    pub fn usable(&self) -> Result<FutureProducer, ProducerError> {
        let generation = self.generation();
        let Some(reason) = fatal_error(&generation.producer) else {
            return Ok(generation.producer);
        };
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.number != generation.number {
            // Another caller replaced it meanwhile.
            return Ok(guard.producer.clone());
        }
        let fresh = create(&self.config)?;
        let retired = std::mem::replace(
            &mut *guard,
            Generation {
                number: generation.number + 1,
                producer: fresh.clone(),
            },
        );
        tracing::warn!(
            client = self.config.get("client.id").unwrap_or_default(),
            generation = guard.number,
            %reason,
            "the producer became unusable; replaced it with a new one (new producer id)"
        );
        drop(guard);
        drop(generation);
        tokio::task::spawn_blocking(move || {
            retired
                .producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = retired.producer.flush(RETIRE_TIMEOUT);
        });
        Ok(fresh)
    }

    fn generation(&self) -> Generation {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Sets the settings this module explains on `config` (overriding any given there, except an
/// in-flight count the caller chose).
pub fn apply_settings(config: &mut ClientConfig) {
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("enable.gapless.guarantee", "true")
        .set("message.timeout.ms", "0")
        .set("socket.nagle.disable", "true");
    if config.get(MAX_IN_FLIGHT).is_none() {
        config.set(MAX_IN_FLIGHT, DEFAULT_PRODUCER_MAX_IN_FLIGHT.to_string());
    }
}

/// Sets how many produce requests `config`'s producer keeps in flight per broker connection.
pub fn set_max_in_flight(config: &mut ClientConfig, requests: u32) {
    config.set(MAX_IN_FLIGHT, requests.to_string());
}

/// A producer with `config`.
fn create(config: &ClientConfig) -> Result<FutureProducer, ProducerError> {
    config.create().map_err(|source| ProducerError {
        client: config.get("client.id").unwrap_or_default().to_owned(),
        source,
    })
}

/// Why `producer` cannot be used any more, if it cannot.
fn fatal_error(producer: &FutureProducer) -> Option<String> {
    producer
        .client()
        .fatal_error()
        .map(|(code, reason)| format!("producer is unusable ({code:?}): {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forces_the_idempotent_settings() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("client.id", "test")
            .set("acks", "1")
            .set("message.timeout.ms", "3000");
        let producer = ReplaceableProducer::new(config.clone()).expect("valid settings");
        for (key, value) in [
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("enable.gapless.guarantee", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("message.timeout.ms", "0"),
        ] {
            assert_eq!(producer.config.get(key), Some(value), "{key}");
        }
        // An in-flight count the caller chose is kept.
        set_max_in_flight(&mut config, 1);
        let chosen = ReplaceableProducer::new(config).expect("valid settings");
        assert_eq!(chosen.config.get(MAX_IN_FLIGHT), Some("1"));
        assert_eq!(producer.replacements(), 0);
        let _kept = producer.usable().expect("a healthy producer is kept");
        assert_eq!(producer.replacements(), 0);
    }

    #[test]
    fn bad_settings_name_the_client() {
        let mut config = ClientConfig::new();
        config
            .set("client.id", "fleet-x")
            .set("no.such.setting", "1");
        let error = ReplaceableProducer::new(config)
            .err()
            .expect("an unknown setting is refused");
        assert!(error.to_string().contains("fleet-x"), "{error}");
    }
}
