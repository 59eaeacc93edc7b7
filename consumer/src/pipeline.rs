//! The consumer loop: read records into a batch, write it when full or old enough (limits that
//! may change while it runs), commit the offsets to Kafka after PostgreSQL, follow this
//! replica's share of the partitions (resuming each from the offsets in PostgreSQL), pause and
//! retry with backoff while a batch cannot be written, publish a committed batch's aggregates,
//! and write the open batch on shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::analytics::Publisher;
use crate::backoff::Backoff;
use crate::batch::{Batch, Record};
use crate::dlq::{self, KafkaDeadLetters};
use crate::flush::{FlushError, flush};
use crate::health::Health;
use crate::kafka::{self, FleetConsumer};
use crate::metrics::Metrics;
use crate::sink::PgSink;

/// When a batch is written; the live configuration may change them while the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// A batch is written when it holds this many records...
    pub max_records: usize,
    /// ... or this long after its first record.
    pub max_wait: Duration,
}

/// How the loop retries, and what it reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Topic read (for assignments and commits).
    pub topic: String,
    /// PostgreSQL is checked after this long without a batch.
    pub idle_check: Duration,
    /// First retry delay after a failure.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
}

/// What the loop follows while it runs.
pub struct Inputs {
    /// This replica's partitions (see [`crate::ownership`]).
    pub share: watch::Receiver<Vec<i32>>,
    /// The batch limits.
    pub limits: watch::Receiver<BatchLimits>,
}

/// The loop's state.
pub struct Pipeline {
    consumer: Arc<FleetConsumer>,
    inputs: Inputs,
    /// The partitions assigned now.
    owned: Vec<i32>,
    sink: PgSink,
    dead_letters: KafkaDeadLetters,
    publisher: Option<Publisher>,
    settings: Settings,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    batch: Batch,
    backoff: Backoff,
    /// Set after a failure: when to try again.
    retry_at: Option<Instant>,
    paused: bool,
}

impl Pipeline {
    /// A loop over a consumer and a (connected) sink, reading the partitions `inputs.share`
    /// names; `publisher`, if any, gets every committed batch's aggregates.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        consumer: Arc<FleetConsumer>,
        inputs: Inputs,
        sink: PgSink,
        dead_letters: KafkaDeadLetters,
        publisher: Option<Publisher>,
        settings: Settings,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let backoff = Backoff::new(settings.retry_initial, settings.retry_cap);
        Self {
            consumer,
            inputs,
            owned: Vec::new(),
            sink,
            dead_letters,
            publisher,
            settings,
            health,
            metrics,
            batch: Batch::new(),
            backoff,
            retry_at: None,
            paused: false,
        }
    }

    /// Runs until `shutdown` changes, then writes the open batch if it can.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let consumer = self.consumer.clone();
        self.on_share().await;
        let mut limits = *self.inputs.limits.borrow_and_update();
        loop {
            let flush_at = self
                .retry_at
                .or_else(|| self.batch.deadline(limits.max_wait).map(Instant::from_std));
            let idle = flush_at.is_none();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Ok(()) = self.inputs.share.changed() => self.on_share().await,
                Ok(()) = self.inputs.limits.changed() => {
                    limits = *self.inputs.limits.borrow_and_update();
                    tracing::info!(max_records = limits.max_records, max_wait = ?limits.max_wait,
                        "batch limits changed");
                }
                _ = sleep_until(flush_at), if flush_at.is_some() => self.attempt().await,
                received = next_record(&consumer) => self.on_record(received),
                _ = tokio::time::sleep(self.settings.idle_check), if idle => self.attempt().await,
            }
            if self.retry_at.is_none() && self.batch.len() >= limits.max_records {
                self.attempt().await;
            }
        }
        self.shut_down().await;
    }

    fn on_record(&mut self, received: KafkaResult<Record>) {
        match received {
            Ok(record) => {
                let verdict = dlq::classify(&record, chrono::Utc::now());
                self.batch.add(record, verdict);
            }
            Err(e) => tracing::warn!(error = %e, "receiving from Kafka"),
        }
    }

    /// Follows a new share: writes the open batch while its partitions are still ours (or
    /// drops it when it cannot be written: its records are read again from the stored
    /// offsets), then assigns the new share, each partition from its offset in PostgreSQL.
    async fn on_share(&mut self) {
        let partitions = self.inputs.share.borrow_and_update().clone();
        if partitions == self.owned {
            return;
        }
        self.metrics.record_rebalance();
        if !self.batch.is_empty() && self.retry_at.is_none() {
            self.attempt().await;
        }
        if !self.batch.is_empty() {
            tracing::info!(
                records = self.batch.len(),
                "share changed before the open batch could be written: dropping it, its records will be read again"
            );
            self.batch.clear();
        }
        let stored = if partitions.is_empty() {
            BTreeMap::new()
        } else {
            match self.sink.stored_offsets(&partitions).await {
                Ok(stored) => {
                    self.health.set_postgres_ok(true);
                    stored
                }
                Err(e) => {
                    tracing::warn!(error = %e,
                        "no stored offsets: resuming from the offsets committed in Kafka");
                    self.health.set_postgres_ok(false);
                    BTreeMap::new()
                }
            }
        };
        tracing::info!(
            ?partitions,
            ?stored,
            "reading partitions (stored = offsets from PostgreSQL)"
        );
        match self.assign(&partitions, &stored) {
            Ok(()) => {
                self.health.set_assigned(partitions.len());
                self.owned = partitions;
            }
            Err(e) => tracing::error!(error = %e, ?partitions, "assigning partitions"),
        }
    }

    fn assign(&self, partitions: &[i32], stored: &BTreeMap<i32, i64>) -> KafkaResult<()> {
        let tpl = kafka::assignment(&self.settings.topic, partitions, stored)?;
        self.consumer.assign(&tpl)?;
        if self.paused && !partitions.is_empty() {
            self.consumer.pause(&tpl)?;
        }
        Ok(())
    }

    /// Writes the open batch, or only checks PostgreSQL when there is none. On failure pauses
    /// consumption and schedules a retry; on success resumes it.
    async fn attempt(&mut self) {
        let result = if self.batch.is_empty() {
            self.sink
                .ping()
                .await
                .map(|()| None)
                .map_err(FlushError::from)
        } else {
            flush(&mut self.batch, &mut self.sink, &self.dead_letters)
                .await
                .map(Some)
        };
        match result {
            Ok(flushed) => {
                if let Some(flushed) = flushed {
                    kafka::commit_async(
                        &self.consumer,
                        &self.settings.topic,
                        self.batch.next_offsets(),
                    );
                    self.metrics.record_batch(&flushed);
                    if let Some(publisher) = &self.publisher {
                        publisher.publish(&flushed.aggregates);
                    }
                    tracing::debug!(
                        records = flushed.records,
                        inserted = flushed.inserted,
                        duplicates = flushed.duplicates,
                        dead_letters = flushed.dead_letters,
                        late = flushed.aggregates.late_dropped,
                        elapsed = ?flushed.elapsed,
                        "batch written"
                    );
                    self.batch.clear();
                }
                self.health.set_postgres_ok(true);
                if self.retry_at.take().is_some() {
                    tracing::info!("PostgreSQL and the dead-letter topic answer again; resuming");
                }
                self.backoff.reset();
                self.set_paused(false);
            }
            Err(e) => {
                if matches!(e, FlushError::Sink(_)) {
                    self.health.set_postgres_ok(false);
                }
                if !self.batch.is_empty() {
                    self.metrics.record_flush_failure();
                }
                let delay = self.backoff.next_delay();
                if self.batch.is_empty() {
                    tracing::warn!(error = %e, retry_in = ?delay,
                        "PostgreSQL check failed; consumption paused");
                } else {
                    tracing::warn!(error = %e, retry_in = ?delay, records = self.batch.len(),
                        "batch not written; consumption paused");
                }
                self.retry_at = Some(Instant::now() + delay);
                self.set_paused(true);
            }
        }
    }

    fn set_paused(&mut self, pause: bool) {
        if self.paused == pause {
            return;
        }
        let result = self.consumer.assignment().and_then(|tpl| {
            if pause {
                self.consumer.pause(&tpl)
            } else {
                self.consumer.resume(&tpl)
            }
        });
        match result {
            Ok(()) => {
                self.paused = pause;
                self.health.set_paused(pause);
            }
            Err(e) => tracing::warn!(error = %e, pause, "pausing or resuming the assignment"),
        }
    }

    /// Writes the open batch once more; what cannot be written is read again from the stored
    /// offsets by whoever reads the partitions next.
    async fn shut_down(mut self) {
        tracing::info!(records = self.batch.len(), "shutting down");
        if !self.batch.is_empty() {
            self.retry_at = None;
            self.attempt().await;
            if self.retry_at.is_some() {
                tracing::warn!(
                    records = self.batch.len(),
                    "open batch not written; its records will be read again"
                );
            }
        }
        self.health.set_assigned(0);
    }
}

async fn next_record(consumer: &FleetConsumer) -> KafkaResult<Record> {
    consumer.recv().await.map(|m| kafka::record(&m))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
