//! Counters of the consumer and their Prometheus text form.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_common::latency_histogram::LatencyHistogram;

use crate::batch::Record;
use crate::flush::Flushed;
use crate::health::Snapshot;

/// Counters and gauges, updated by the consumer loop.
#[derive(Debug, Default)]
pub struct Metrics {
    rows_written: AtomicU64,
    rows_duplicate: AtomicU64,
    batches: AtomicU64,
    dlq: AtomicU64,
    flush_failures: AtomicU64,
    rebalances: AtomicU64,
    late_dropped: AtomicU64,
    published: AtomicU64,
    publish_failures: AtomicU64,
    coalesced: AtomicU64,
    last_batch_size: AtomicU64,
    /// `f64` bits.
    last_batch_latency: AtomicU64,
    /// Records' ages when this consumer received them.
    received_age: LatencyHistogram,
    /// Records' ages when the transaction that stored them committed.
    stored_age: LatencyHistogram,
}

/// Time from a record's timestamp to `now`; `None` without a timestamp. A timestamp ahead of
/// `now` (another host's clock) counts as age zero.
fn age(record: &Record, now: DateTime<Utc>) -> Option<Duration> {
    let millis = now.timestamp_millis().saturating_sub(record.timestamp_ms?);
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

impl Metrics {
    /// Records a committed batch.
    pub fn record_batch(&self, flushed: &Flushed) {
        self.rows_written
            .fetch_add(flushed.inserted, Ordering::Relaxed);
        self.rows_duplicate
            .fetch_add(flushed.duplicates, Ordering::Relaxed);
        self.dlq.fetch_add(flushed.dead_letters, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.late_dropped
            .fetch_add(flushed.aggregates.late_dropped, Ordering::Relaxed);
        self.last_batch_size
            .store(flushed.records, Ordering::Relaxed);
        self.last_batch_latency
            .store(flushed.elapsed.as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    /// Records a batch that could not be written (it is retried).
    pub fn record_flush_failure(&self) {
        self.flush_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the outcome of publishing one batch's aggregates.
    pub fn record_published(&self, delivered: u64, failed: u64) {
        self.published.fetch_add(delivered, Ordering::Relaxed);
        self.publish_failures.fetch_add(failed, Ordering::Relaxed);
    }

    /// Records output-topic messages replaced by a later value of their key before they were
    /// produced.
    pub fn record_coalesced(&self, replaced: u64) {
        self.coalesced.fetch_add(replaced, Ordering::Relaxed);
    }

    /// Counts the age of a record received at `now`.
    pub fn record_received(&self, record: &Record, now: DateTime<Utc>) {
        if let Some(age) = age(record, now) {
            self.received_age.observe(age);
        }
    }

    /// Counts the ages of `records`, stored by a transaction that committed at `now`.
    pub fn record_stored<'a>(&self, records: impl Iterator<Item = &'a Record>, now: DateTime<Utc>) {
        for age in records.filter_map(|r| age(r, now)) {
            self.stored_age.observe(age);
        }
    }

    /// Records a change of this replica's share of the partitions.
    pub fn record_rebalance(&self) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters and of `health`.
    pub fn render(&self, health: &Snapshot) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let latency = f64::from_bits(get(&self.last_batch_latency));
        let samples: [(&str, &str, &str, String); 15] = [
            (
                "rows_written_total",
                "counter",
                "Rows inserted into diag.",
                get(&self.rows_written).to_string(),
            ),
            (
                "rows_duplicate_total",
                "counter",
                "Rows skipped because their event_id was already stored.",
                get(&self.rows_duplicate).to_string(),
            ),
            (
                "batches_total",
                "counter",
                "Batches committed to PostgreSQL.",
                get(&self.batches).to_string(),
            ),
            (
                "dlq_total",
                "counter",
                "Records sent to the dead-letter topic.",
                get(&self.dlq).to_string(),
            ),
            (
                "flush_failures_total",
                "counter",
                "Batch writes that failed and were retried.",
                get(&self.flush_failures).to_string(),
            ),
            (
                "rebalances_total",
                "counter",
                "Changes of this replica's share of the partitions (assignments).",
                get(&self.rebalances).to_string(),
            ),
            (
                "late_events_dropped_from_windows_total",
                "counter",
                "Events stored but too late (beyond the allowed lateness) for their windows.",
                get(&self.late_dropped).to_string(),
            ),
            (
                "analytics_published_total",
                "counter",
                "Aggregate messages acknowledged by the output topics.",
                get(&self.published).to_string(),
            ),
            (
                "analytics_publish_failures_total",
                "counter",
                "Aggregate messages not acknowledged by the output topics in time.",
                get(&self.publish_failures).to_string(),
            ),
            (
                "analytics_coalesced_total",
                "counter",
                "Aggregate messages replaced by a later value of their key within one publish interval, never produced.",
                get(&self.coalesced).to_string(),
            ),
            (
                "last_batch_size",
                "gauge",
                "Records in the last committed batch.",
                get(&self.last_batch_size).to_string(),
            ),
            (
                "last_batch_latency_seconds",
                "gauge",
                "Time to write and commit the last batch.",
                format!("{latency}"),
            ),
            (
                "assigned_partitions",
                "gauge",
                "Partitions assigned to this consumer.",
                health.assigned.to_string(),
            ),
            (
                "postgres_up",
                "gauge",
                "1 when the last PostgreSQL operation succeeded.",
                u8::from(health.postgres_ok).to_string(),
            ),
            (
                "consumer_paused",
                "gauge",
                "1 while consumption is paused for a failed batch.",
                u8::from(health.paused).to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in samples {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP consumer_ready 1 when /readyz answers 200.\n# TYPE consumer_ready gauge\nconsumer_ready {}",
            u8::from(health.is_ready())
        );
        self.received_age.render(
            "record_received_age_seconds",
            "Time from a record's timestamp (ingest's produce call) to its receipt by this consumer: the producer's linger, the broker's write and the fetch.",
            &mut out,
        );
        self.stored_age.render(
            "record_stored_age_seconds",
            "Time from a record's timestamp (ingest's produce call) to the commit of the transaction that stored it (or sent it to the dead-letter topic): end to end after ingest.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analytics::Aggregates;

    fn value(text: &str, name: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
            .to_owned()
    }

    #[test]
    fn batches_add_up() {
        let m = Metrics::default();
        let flushed = Flushed {
            records: 10,
            inserted: 7,
            duplicates: 2,
            dead_letters: 1,
            elapsed: Duration::from_millis(250),
            aggregates: Aggregates {
                late_dropped: 2,
                ..Aggregates::default()
            },
        };
        m.record_batch(&flushed);
        m.record_batch(&Flushed {
            records: 3,
            inserted: 3,
            duplicates: 0,
            dead_letters: 0,
            elapsed: Duration::from_millis(5),
            aggregates: Aggregates::default(),
        });
        m.record_published(5, 1);
        m.record_coalesced(7);
        let text = m.render(&Snapshot::default());
        assert_eq!(value(&text, "rows_written_total"), "10");
        assert_eq!(value(&text, "rows_duplicate_total"), "2");
        assert_eq!(value(&text, "batches_total"), "2");
        assert_eq!(value(&text, "dlq_total"), "1");
        assert_eq!(value(&text, "last_batch_size"), "3");
        assert_eq!(value(&text, "last_batch_latency_seconds"), "0.005");
        assert_eq!(value(&text, "consumer_ready"), "0");
        assert_eq!(value(&text, "late_events_dropped_from_windows_total"), "2");
        assert_eq!(value(&text, "analytics_published_total"), "5");
        assert_eq!(value(&text, "analytics_publish_failures_total"), "1");
        assert_eq!(value(&text, "analytics_coalesced_total"), "7");
    }

    #[test]
    fn record_ages_run_from_the_record_timestamp() {
        let m = Metrics::default();
        let now = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .to_utc();
        let at = |ms_before: i64| Record {
            partition: 0,
            offset: 0,
            key: None,
            payload: None,
            timestamp_ms: Some(now.timestamp_millis() - ms_before),
        };
        let untimed = Record {
            timestamp_ms: None,
            ..at(0)
        };
        m.record_received(&at(3), now);
        m.record_received(&untimed, now);
        m.record_stored([at(40), at(40), at(700), at(-5), untimed].iter(), now);
        let text = m.render(&Snapshot::default());
        assert_eq!(value(&text, "record_received_age_seconds_count"), "1");
        assert_eq!(value(&text, "record_received_age_seconds_sum"), "0.003");
        assert_eq!(
            value(&text, "record_received_age_seconds_bucket{le=\"0.005\"}"),
            "1"
        );
        assert_eq!(value(&text, "record_stored_age_seconds_count"), "4");
        assert_eq!(
            value(&text, "record_stored_age_seconds_bucket{le=\"0.001\"}"),
            "1"
        );
        assert_eq!(
            value(&text, "record_stored_age_seconds_bucket{le=\"0.05\"}"),
            "3"
        );
        assert_eq!(value(&text, "record_stored_age_seconds_sum"), "0.78");
    }

    #[test]
    fn every_sample_has_help_and_type() {
        let text = Metrics::default().render(&Snapshot::default());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let sample = line.split([' ', '{']).next().unwrap();
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    sample
                        .strip_suffix(suffix)
                        .filter(|base| text.contains(&format!("# TYPE {base} histogram")))
                })
                .unwrap_or(sample);
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
