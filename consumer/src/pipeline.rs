//! The consumer loop: read records into a batch while the previous one is written (one write
//! in flight, see [`crate::schedule`]), commit the offsets to Kafka after PostgreSQL, follow
//! this replica's share of the partitions (resuming each from the offsets in PostgreSQL),
//! pause and retry with backoff while a batch cannot be written, publish a committed batch's
//! aggregates, and write the open batch on shutdown; the limits may change while it runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::analytics::{Aggregates, Publisher};
use crate::backoff::Backoff;
use crate::batch::{Batch, Record};
use crate::dlq::{self, KafkaDeadLetters};
use crate::flush::{FlushError, Flushed, flush};
use crate::health::Health;
use crate::kafka::{self, FleetConsumer};
use crate::metrics::Metrics;
use crate::schedule::{self, Next};
use crate::sink::PgSink;

/// When a batch is written; the live configuration may change them while the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// A batch holds at most this many records: the open batch stops receiving when full
    /// and is written as soon as no write is in flight.
    pub max_records: usize,
    /// How long the open batch lingers for more records after its first one before it is
    /// written when no write is in flight (while one is, records gather anyway).
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

/// What writes: the sink and the dead-letter producer, owned by the write in flight while
/// there is one.
struct Writer {
    sink: PgSink,
    dead_letters: KafkaDeadLetters,
}

/// What a write hands back: the writer, the batch (`None` for a check of PostgreSQL) and the
/// outcome.
struct Done {
    writer: Writer,
    batch: Option<Batch>,
    result: Result<Option<Flushed>, FlushError>,
}

/// The write in flight runs as a task of its own, so that a worker thread encodes its rows and
/// computes its aggregates while this loop's thread receives and checks the next batch's
/// records; in one task the two took turns. On 2 cores the drain rate did not change
/// measurably (results/end_to_end.md); the serialisation is gone on larger machines.
type InFlight = JoinHandle<Done>;

/// The loop's state.
pub struct Pipeline {
    consumer: Arc<FleetConsumer>,
    inputs: Inputs,
    /// The partitions assigned now.
    owned: Vec<i32>,
    /// `None` while a write is in flight (it owns the writer).
    writer: Option<Writer>,
    in_flight: Option<InFlight>,
    publisher: Option<Publisher>,
    settings: Settings,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// The batch records are received into.
    open: Batch,
    /// A batch whose write failed, written again before `open`.
    pending: Option<Batch>,
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
            writer: Some(Writer { sink, dead_letters }),
            in_flight: None,
            publisher,
            settings,
            health,
            metrics,
            open: Batch::new(),
            pending: None,
            backoff,
            retry_at: None,
            paused: false,
        }
    }

    fn state(&self, limits: BatchLimits) -> schedule::State {
        schedule::State {
            writing: self.in_flight.is_some(),
            retrying: self.retry_at.is_some(),
            pending: self.pending.is_some(),
            open_len: self.open.len(),
            open_deadline: self.open.deadline(limits.max_wait),
        }
    }

    /// Runs until `shutdown` changes, then writes the open batch if it can.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let consumer = self.consumer.clone();
        self.on_share().await;
        let mut limits = *self.inputs.limits.borrow_and_update();
        loop {
            self.start_next(limits);
            let state = self.state(limits);
            let wake_at = self
                .retry_at
                .or_else(|| schedule::linger_until(state).map(Instant::from_std));
            let idle = !state.writing && !state.retrying && !state.pending && state.open_len == 0;
            let receive = schedule::may_receive(state.open_len, limits);
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Ok(()) = self.inputs.share.changed() => self.on_share().await,
                Ok(()) = self.inputs.limits.changed() => {
                    limits = *self.inputs.limits.borrow_and_update();
                    tracing::info!(max_records = limits.max_records, max_wait = ?limits.max_wait,
                        "batch limits changed");
                }
                done = in_flight(&mut self.in_flight), if state.writing => self.on_done(done),
                _ = sleep_until(wake_at), if wake_at.is_some() => self.on_wake(),
                received = next_record(&consumer), if receive => {
                    self.on_record(received);
                    // Take what librdkafka already holds before a write starts.
                    while schedule::may_receive(self.open.len(), limits) {
                        match next_record(&consumer).now_or_never() {
                            Some(received) => self.on_record(received),
                            None => break,
                        }
                    }
                }
                _ = tokio::time::sleep(self.settings.idle_check), if idle => {
                    self.start(None);
                }
            }
        }
        self.shut_down().await;
    }

    fn on_record(&mut self, received: KafkaResult<Record>) {
        match received {
            Ok(record) => {
                let now = chrono::Utc::now();
                self.metrics.record_received(&record, now);
                let verdict = dlq::classify(&record, now);
                self.open.add(record, verdict);
            }
            Err(e) => tracing::warn!(error = %e, "receiving from Kafka"),
        }
    }

    /// Starts the write [`schedule::next`] asks for, if any.
    fn start_next(&mut self, limits: BatchLimits) {
        match schedule::next(self.state(limits), limits, std::time::Instant::now()) {
            Next::Nothing => {}
            Next::Pending => {
                let batch = self.pending.take();
                self.start(batch);
            }
            Next::Open => {
                let batch = std::mem::take(&mut self.open);
                self.start(Some(batch));
            }
        }
    }

    /// The retry time came: the next turn writes what waits, or checks PostgreSQL when
    /// nothing does.
    fn on_wake(&mut self) {
        if self.retry_at.is_some_and(|at| at <= Instant::now()) {
            self.retry_at = None;
            if self.pending.is_none() && self.open.is_empty() {
                self.start(None);
            }
        }
    }

    /// Starts writing `batch`, or checking PostgreSQL when there is none. Does nothing while
    /// a write is in flight.
    fn start(&mut self, batch: Option<Batch>) {
        let Some(mut writer) = self.writer.take() else {
            if let Some(batch) = batch {
                self.pending = Some(batch);
            }
            return;
        };
        self.in_flight = Some(tokio::spawn(async move {
            let (batch, result) = match batch {
                Some(mut batch) => {
                    let result = flush(&mut batch, &mut writer.sink, &writer.dead_letters).await;
                    (Some(batch), result.map(Some))
                }
                None => {
                    let result = writer.sink.ping().await.map_err(FlushError::from);
                    (None, result.map(|()| None))
                }
            };
            Done {
                writer,
                batch,
                result,
            }
        }));
    }

    /// Waits for the write in flight, if any, and takes its outcome.
    async fn finish_write(&mut self) {
        if self.in_flight.is_some() {
            let done = in_flight(&mut self.in_flight).await;
            self.on_done(done);
        }
    }

    /// Writes what waits (a failed batch, then the open batch) now, one after the other,
    /// stopping at the first failure.
    async fn write_all(&mut self) {
        self.finish_write().await;
        while self.retry_at.is_none() && (self.pending.is_some() || !self.open.is_empty()) {
            let batch = match self.pending.take() {
                Some(batch) => batch,
                None => std::mem::take(&mut self.open),
            };
            self.start(Some(batch));
            self.finish_write().await;
        }
    }

    /// Takes a finished write's outcome: commits the offsets to Kafka and publishes the
    /// aggregates of a written batch and resumes; on failure keeps the batch for a retry,
    /// pauses consumption and schedules the retry.
    fn on_done(&mut self, done: Done) {
        self.in_flight = None;
        self.writer = Some(done.writer);
        match done.result {
            Ok(flushed) => {
                if let (Some(flushed), Some(batch)) = (flushed, &done.batch) {
                    kafka::commit_async(&self.consumer, &self.settings.topic, batch.next_offsets());
                    self.metrics.record_batch(&flushed);
                    self.metrics
                        .record_stored(batch.records(), chrono::Utc::now());
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
                }
                self.health.set_postgres_ok(true);
                if self.paused {
                    tracing::info!("PostgreSQL and the dead-letter topic answer again; resuming");
                }
                self.backoff.reset();
                self.set_paused(false);
            }
            Err(e) => {
                if matches!(e, FlushError::Sink(_)) {
                    self.health.set_postgres_ok(false);
                }
                let delay = self.backoff.next_delay();
                match done.batch {
                    Some(batch) => {
                        self.metrics.record_flush_failure();
                        tracing::warn!(error = %e, retry_in = ?delay, records = batch.len(),
                            "batch not written; consumption paused");
                        self.pending = Some(batch);
                    }
                    None => tracing::warn!(error = %e, retry_in = ?delay,
                        "PostgreSQL check failed; consumption paused"),
                }
                self.retry_at = Some(Instant::now() + delay);
                self.set_paused(true);
            }
        }
    }

    /// The batches not yet written, failed one first, as one count.
    fn unwritten(&self) -> usize {
        self.pending.as_ref().map_or(0, Batch::len) + self.open.len()
    }

    /// Follows a new share: writes what waits while its partitions are still ours (or drops
    /// it when it cannot be written: its records are read again from the stored offsets),
    /// then assigns the new share, each partition from its offset in PostgreSQL.
    async fn on_share(&mut self) {
        let partitions = self.inputs.share.borrow_and_update().clone();
        if partitions == self.owned {
            return;
        }
        self.metrics.record_rebalance();
        self.finish_write().await;
        self.write_all().await;
        if self.unwritten() > 0 {
            tracing::info!(
                records = self.unwritten(),
                "share changed before the open batch could be written: dropping it, its records will be read again"
            );
            self.pending = None;
            self.open.clear();
        }
        let stored = if partitions.is_empty() {
            BTreeMap::new()
        } else {
            let sink = &mut self.writer.as_mut().expect("no write in flight").sink;
            match sink.stored_offsets(&partitions).await {
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
        let gained = partitions.iter().any(|p| !self.owned.contains(p));
        match self.assign(&partitions, &stored) {
            Ok(()) => {
                self.health.set_assigned(partitions.len());
                self.owned = partitions;
                if gained {
                    self.republish_recent().await;
                }
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

    /// Finishes the write in flight and writes what waits once more; what cannot be written
    /// is read again from the stored offsets by whoever reads the partitions next.
    async fn shut_down(mut self) {
        self.finish_write().await;
        tracing::info!(records = self.unwritten(), "shutting down");
        self.retry_at = None;
        self.write_all().await;
        if self.unwritten() > 0 {
            tracing::warn!(
                records = self.unwritten(),
                "open batch not written; its records will be read again"
            );
        }
        self.health.set_assigned(0);
        if let Some(publisher) = self.publisher.take() {
            publisher.close().await;
        }
    }

    /// Produces again the summaries stored shortly before the newest one: the replica that
    /// read these partitions before may have stopped with them gathered, not yet produced.
    async fn republish_recent(&mut self) {
        let Some(publisher) = &self.publisher else {
            return;
        };
        let within = publisher.republish_window();
        let sink = &mut self.writer.as_mut().expect("no write in flight").sink;
        match sink.recent_summaries(within).await {
            Ok(vehicles) => {
                tracing::info!(
                    summaries = vehicles.len(),
                    ?within,
                    "producing again the summaries stored shortly before the newest one"
                );
                publisher.publish_now(&Aggregates {
                    vehicles,
                    ..Aggregates::default()
                });
            }
            Err(e) => tracing::warn!(error = %e,
                "the recent summaries could not be read to produce them again"),
        }
    }
}

/// The outcome of the write in flight (never called without one).
async fn in_flight(write: &mut Option<InFlight>) -> Done {
    match write.as_mut() {
        Some(write) => match write.await {
            Ok(done) => done,
            // A panic in the write is the loop's own, as it was before the write had a task.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the write task was cancelled: {e}"),
        },
        None => std::future::pending().await,
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
