//! Poison records: the decision whether a record can be stored, and the dead-letter topic that
//! receives the ones that never can (original key and bytes, the reason in headers).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_common::producer::ReplaceableProducer;
use fleet_common::{TelemetryEvent, ValidationError};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::batch::Record;
use crate::row::{DiagRow, RowError};

/// Header with the reason, in words.
pub const HEADER_REASON: &str = "fleet.reason";
/// Header with the topic the record was read from.
pub const HEADER_TOPIC: &str = "fleet.topic";
/// Header with the partition the record was read from.
pub const HEADER_PARTITION: &str = "fleet.partition";
/// Header with the offset the record was read from.
pub const HEADER_OFFSET: &str = "fleet.offset";

/// Why a record can never be stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoisonReason {
    /// No value at all (a tombstone) or zero bytes.
    #[error("empty value")]
    Empty,
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not the shape of a telemetry event.
    #[error("not a telemetry event: {0}")]
    Shape(String),
    /// A telemetry event that breaks a rule.
    #[error("invalid event: {0}")]
    Invalid(ValidationError),
    /// A valid event that the `diag` columns cannot hold.
    #[error("cannot be stored: {0}")]
    Unstorable(RowError),
    /// PostgreSQL refused the row (found by trying rows one by one after a batch failed).
    #[error("rejected by PostgreSQL: {0}")]
    Rejected(String),
}

/// The DLQ decision: the row to store, or why the record is poison. Legacy VINs (no check
/// digit) are accepted because ingest already admitted them.
pub fn classify(record: &Record, now: DateTime<Utc>) -> Result<DiagRow, PoisonReason> {
    let bytes = match record.payload.as_deref() {
        None | Some([]) => return Err(PoisonReason::Empty),
        Some(bytes) => bytes,
    };
    let event: TelemetryEvent = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => PoisonReason::Shape(e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => PoisonReason::NotJson(e.to_string()),
        }
    })?;
    event.validate_legacy(now).map_err(PoisonReason::Invalid)?;
    DiagRow::from_event(&event, record.partition, record.offset).map_err(PoisonReason::Unstorable)
}

/// A record that goes to the dead-letter topic instead of PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Poison {
    /// The record as read.
    pub record: Record,
    /// Why it cannot be stored.
    pub reason: PoisonReason,
}

/// Why a dead letter could not be produced.
#[derive(Debug, thiserror::Error)]
#[error("producing the dead letter of {topic}/{partition}@{offset} to {dlq_topic}: {source}")]
pub struct DlqError {
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The producer's error.
    pub source: rdkafka::error::KafkaError,
}

/// Where poison records go. A trait so the flush logic can be tested with a fake.
pub trait DeadLetters {
    /// Produces one dead letter and waits until the broker acknowledged it.
    fn send(&self, poison: &Poison) -> impl Future<Output = Result<(), DlqError>> + Send;
}

/// The dead-letter topic on the Kafka broker.
pub struct KafkaDeadLetters {
    producer: ReplaceableProducer,
    source_topic: String,
    dlq_topic: String,
    timeout: Duration,
}

impl KafkaDeadLetters {
    /// Dead letters of records read from `source_topic`, produced to `dlq_topic`; a send gives
    /// up after `timeout`.
    pub fn new(
        producer: ReplaceableProducer,
        source_topic: &str,
        dlq_topic: &str,
        timeout: Duration,
    ) -> Self {
        Self {
            producer,
            source_topic: source_topic.to_owned(),
            dlq_topic: dlq_topic.to_owned(),
            timeout,
        }
    }
}

/// The header values of a dead letter, in order: reason, topic, partition, offset.
pub fn header_values(poison: &Poison, source_topic: &str) -> [(&'static str, String); 4] {
    [
        (HEADER_REASON, poison.reason.to_string()),
        (HEADER_TOPIC, source_topic.to_owned()),
        (HEADER_PARTITION, poison.record.partition.to_string()),
        (HEADER_OFFSET, poison.record.offset.to_string()),
    ]
}

impl DeadLetters for KafkaDeadLetters {
    async fn send(&self, poison: &Poison) -> Result<(), DlqError> {
        let values = header_values(poison, &self.source_topic);
        let headers = values.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_str()),
            })
        });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.dlq_topic).headers(headers);
        if let Some(payload) = poison.record.payload.as_deref() {
            record = record.payload(payload);
        }
        if let Some(key) = poison.record.key.as_deref() {
            record = record.key(key);
        }
        // A wait that ends leaves the record queued: it may still land, so the DLQ is
        // at-least-once, never lossy.
        let dlq_error = |source| DlqError {
            dlq_topic: self.dlq_topic.clone(),
            topic: self.source_topic.clone(),
            partition: poison.record.partition,
            offset: poison.record.offset,
            source,
        };
        let producer = self.producer.usable().map_err(|e| dlq_error(e.source))?;
        let delivery = tokio::time::timeout(self.timeout, producer.send(record, self.timeout))
            .await
            .unwrap_or(Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
                ),
                rdkafka::message::OwnedMessage::new(
                    None,
                    None,
                    String::new(),
                    rdkafka::Timestamp::NotAvailable,
                    0,
                    0,
                    None,
                ),
            )));
        delivery
            .map(|_| ())
            .map_err(|(source, _)| dlq_error(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::event_json;

    fn record(payload: &[u8]) -> Record {
        Record {
            partition: 1,
            offset: 9,
            key: Some(b"1M8GDM9AXKP042788".to_vec()),
            payload: Some(payload.to_vec()),
            timestamp_ms: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-21T10:00:10Z".parse().unwrap()
    }

    fn classify_json(v: serde_json::Value) -> Result<DiagRow, PoisonReason> {
        classify(&record(v.to_string().as_bytes()), now())
    }

    #[test]
    fn valid_event_becomes_a_row_at_its_position() {
        let row = classify_json(event_json(3)).unwrap();
        assert_eq!((row.kafka_partition, row.kafka_offset, row.seq), (1, 9, 3));
    }

    #[test]
    fn legacy_vin_is_accepted() {
        let mut v = event_json(3);
        v["vin"] = "QWERTYUIOPASDFGH1".into();
        assert_eq!(classify_json(v).unwrap().vin, "QWERTYUIOPASDFGH1");
    }

    #[test]
    fn tombstone_and_empty_values_are_poison() {
        let mut r = record(b"");
        assert_eq!(classify(&r, now()), Err(PoisonReason::Empty));
        r.payload = None;
        assert_eq!(classify(&r, now()), Err(PoisonReason::Empty));
    }

    #[test]
    fn garbage_is_not_json() {
        let err = classify(&record(b"\x00\x01garbage"), now()).unwrap_err();
        assert!(matches!(err, PoisonReason::NotJson(_)), "{err}");
        let err = classify(&record(b"{\"event_id\":"), now()).unwrap_err();
        assert!(matches!(err, PoisonReason::NotJson(_)), "{err}");
    }

    #[test]
    fn wrong_shape_names_the_field() {
        let mut v = event_json(3);
        v["colour"] = "red".into();
        let err = classify_json(v).unwrap_err();
        assert!(matches!(err, PoisonReason::Shape(_)), "{err}");
        assert!(err.to_string().contains("colour"), "{err}");

        let mut v = event_json(3);
        v.as_object_mut().unwrap().remove("sensors");
        assert!(matches!(classify_json(v), Err(PoisonReason::Shape(_))));
    }

    #[test]
    fn rule_breakers_are_invalid() {
        let mut v = event_json(3);
        v["speed"] = (-5.0).into();
        match classify_json(v).unwrap_err() {
            PoisonReason::Invalid(e) => assert_eq!(e.field, "speed"),
            other => panic!("{other}"),
        }
        let mut v = event_json(3);
        v["vin"] = "short".into();
        match classify_json(v).unwrap_err() {
            PoisonReason::Invalid(e) => assert_eq!(e.field, "vin"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unstorable_values_break_the_shared_rules() {
        // The same rules ingest applies (fleet_common's validation), so ingest never
        // acknowledges what ends up here.
        let cases = [
            ("seq", serde_json::json!(u64::MAX)),
            ("seq", serde_json::json!(1_u64 << 63)),
            ("make", serde_json::json!("Vol\u{0}vo")),
            ("ts", serde_json::json!(-1e11)),
        ];
        for (field, value) in cases {
            let mut v = event_json(3);
            v[field] = value;
            match classify_json(v).unwrap_err() {
                PoisonReason::Invalid(e) => assert_eq!(e.field, field, "{e}"),
                other => panic!("{field}: {other}"),
            }
        }
    }

    #[test]
    fn headers_carry_reason_and_origin() {
        let poison = Poison {
            record: record(b"x"),
            reason: PoisonReason::Empty,
        };
        let headers = header_values(&poison, "telemetry");
        assert_eq!(
            headers,
            [
                ("fleet.reason", "empty value".to_owned()),
                ("fleet.topic", "telemetry".to_owned()),
                ("fleet.partition", "1".to_owned()),
                ("fleet.offset", "9".to_owned()),
            ]
        );
    }
}
