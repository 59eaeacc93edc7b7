//! Records handed to librdkafka in rounds: one round at a time, and everything appended while a
//! round is in flight goes into the next one (a group commit).
//!
//! Why: librdkafka's idempotent producer keeps one produce request per partition in flight, not
//! `max.in.flight.requests.per.connection` of them (it counts the *messages* in flight against
//! the five-request window; confluentinc/librdkafka#4989). And while a batch whose linger has
//! ended waits behind that request, the producer's broker thread polls without sleeping until
//! the acknowledgement arrives: measured, 73 % of ingest's CPU and 43 % of the consumer's at
//! 10,500 events/s, on a machine where those cores serve the broker and PostgreSQL too. A round
//! that waits here costs nothing, the next produce request carries everything that arrived
//! meanwhile, and a record that arrives when nothing is in flight leaves at once.
//!
//! A round that starts while nothing is in flight (its first record found the loop idle) first
//! lingers for [`RoundLimits::linger`], so that the requests arriving together (the clients
//! answered by the last round, sending again) leave together; a round of records that waited
//! during a flight leaves at once.
//!
//! A round holds at most [`RoundLimits::records`] records and [`RoundLimits::bytes`] bytes of
//! keys and values, so that librdkafka sends it as one request (`batch.size` is 1 MB), and it is
//! handed over in order: records keep the order in which they were appended.
//!
//! The dispatch loop is generic over [`Handover`]; [`KafkaHandover`] is the real one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};
use rdkafka::producer::FutureRecord;
use tokio::sync::{mpsc, oneshot};

use crate::producer::ReplaceableProducer;

/// Where the broker stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

/// Why a record was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The records waiting for a round reached the limit; nothing was queued.
    #[error("{0} records already wait for the broker (the producer's queue is full)")]
    Full(u64),
    /// The producer refused the record or could not be used.
    #[error("the producer refused the record: {0}")]
    Refused(String),
    /// The broker answered the record with an error.
    #[error("the broker did not acknowledge the record: {0}")]
    NotAcknowledged(String),
    /// The producer was dropped (replaced or shut down) before the broker answered.
    #[error("the producer shut down before the broker answered")]
    Canceled,
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its topic.
    pub topic: String,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub payload: Vec<u8>,
}

impl Outgoing {
    fn bytes(&self) -> usize {
        self.key.len() + self.payload.len()
    }
}

/// How large a round may grow, and how many records may wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundLimits {
    /// Records per round.
    pub records: usize,
    /// Bytes of keys and values per round (a single larger record still makes a round alone).
    pub bytes: usize,
    /// Records appended and not yet answered, beyond which [`Rounds::send`] refuses at once.
    pub queued: u64,
    /// How long a round that starts while nothing is in flight waits for more records.
    pub linger: Duration,
}

impl Default for RoundLimits {
    /// 2,000 records or 768 KiB per round: with librdkafka's per-record overhead that stays
    /// under its 1 MB `batch.size`, and 2,000 small records are queued in about a millisecond.
    /// 100,000 queued records: librdkafka's own default queue bound. No linger.
    fn default() -> Self {
        Self {
            records: 2_000,
            bytes: 768 * 1024,
            queued: 100_000,
            linger: Duration::ZERO,
        }
    }
}

/// What hands one record to the producer; the future resolves with the broker's answer.
pub trait Handover: Send + Sync + 'static {
    /// Queues `record`, one of a round of `round_len` records, now, in call order.
    fn hand_over(
        &self,
        record: &Outgoing,
        round_len: usize,
    ) -> Result<BoxFuture<'static, Result<Delivered, SendError>>, SendError>;
}

/// The real [`Handover`]: librdkafka through a [`ReplaceableProducer`] (a producer with a fatal
/// error is replaced before the next record is handed over), and optionally a second one for
/// large rounds.
///
/// Why two: handing a record to librdkafka takes about a microsecond on an idle machine and
/// several under load (2,000 records: 1.2 to 13 ms measured at saturation), and librdkafka
/// sends what it holds once its `linger.ms` has passed since the first record. A round that
/// takes longer to hand over than that linger leaves in two requests, and while the first is in
/// flight the rest makes librdkafka's broker thread spin (see the module's docs). A long linger
/// covers the handover of a large round but would hold every small round that long; so small
/// rounds go to a producer with a short linger and large ones to a producer whose linger covers
/// their handover and whose `batch.num.messages` is the largest round, so that a full round
/// leaves as soon as its last record is queued.
pub struct KafkaHandover {
    producer: ReplaceableProducer,
    large: Option<LargeRounds>,
}

/// The producer for rounds of at least `from` records.
struct LargeRounds {
    producer: ReplaceableProducer,
    from: usize,
}

impl KafkaHandover {
    /// Hands every record to `producer`.
    pub fn new(producer: ReplaceableProducer) -> Self {
        Self {
            producer,
            large: None,
        }
    }

    /// Hands the records of rounds of at least `from` records to `large` instead.
    pub fn with_large_rounds(mut self, large: ReplaceableProducer, from: usize) -> Self {
        self.large = Some(LargeRounds {
            producer: large,
            from,
        });
        self
    }
}

impl Handover for KafkaHandover {
    fn hand_over(
        &self,
        record: &Outgoing,
        round_len: usize,
    ) -> Result<BoxFuture<'static, Result<Delivered, SendError>>, SendError> {
        let producer = match &self.large {
            Some(large) if round_len >= large.from => &large.producer,
            _ => &self.producer,
        };
        let producer = producer
            .usable()
            .map_err(|e| SendError::Refused(e.to_string()))?;
        let future = FutureRecord::to(&record.topic)
            .key(&record.key)
            .payload(&record.payload);
        let delivery = producer
            .send_result(future)
            .map_err(|(e, _)| SendError::Refused(e.to_string()))?;
        Ok(async move {
            match delivery.await {
                Ok(Ok(d)) => Ok(Delivered {
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => Err(SendError::NotAcknowledged(e.to_string())),
                Err(_canceled) => Err(SendError::Canceled),
            }
        }
        .boxed())
    }
}

/// A record waiting for its round, and where its answer goes.
struct Waiting {
    record: Outgoing,
    answer: oneshot::Sender<Result<Delivered, SendError>>,
}

/// The answer to one record, once its round was acknowledged.
pub type Answer = BoxFuture<'static, Result<Delivered, SendError>>;

/// The handle of one dispatch loop; cloning shares it. The loop ends when every handle is
/// dropped and the records already sent are answered.
#[derive(Clone)]
pub struct Rounds {
    queue: mpsc::UnboundedSender<Waiting>,
    /// Records sent and not yet answered.
    unanswered: Arc<AtomicU64>,
    limits: RoundLimits,
}

impl Rounds {
    /// Starts the dispatch loop over `handover` on the current tokio runtime.
    pub fn start(handover: impl Handover, limits: RoundLimits) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let unanswered = Arc::new(AtomicU64::new(0));
        tokio::spawn(dispatch(handover, receiver, unanswered.clone(), limits));
        Self {
            queue,
            unanswered,
            limits,
        }
    }

    /// Queues `record` for the next round, in call order, and returns the wait for the broker's
    /// answer. Refuses at once ([`SendError::Full`]) when the limit of waiting records is
    /// reached. A record whose answer is no longer awaited is still produced.
    pub fn send(&self, record: Outgoing) -> Answer {
        let waiting = self.unanswered.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.limits.queued {
            self.unanswered.fetch_sub(1, Ordering::AcqRel);
            return futures::future::ready(Err(SendError::Full(waiting))).boxed();
        }
        let (answer, answered) = oneshot::channel();
        if self.queue.send(Waiting { record, answer }).is_err() {
            self.unanswered.fetch_sub(1, Ordering::AcqRel);
            return futures::future::ready(Err(SendError::Canceled)).boxed();
        }
        answered
            .map(|answer| answer.unwrap_or(Err(SendError::Canceled)))
            .boxed()
    }

    /// Records sent and not yet answered: waiting for a round or in the round in flight.
    pub fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::Acquire)
    }

    /// Waits until every record sent so far is answered, or `timeout` passes (then `false`).
    pub async fn drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.unanswered() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// The dispatch loop: takes what waits, up to the limits, hands it over, waits until every
/// record of the round is answered (answering each as soon as the broker did), then repeats.
async fn dispatch(
    handover: impl Handover,
    mut receiver: mpsc::UnboundedReceiver<Waiting>,
    unanswered: Arc<AtomicU64>,
    limits: RoundLimits,
) {
    let mut carried: Option<Waiting> = None;
    // Whether a round was just acknowledged: then what waits leaves at once.
    let mut after_flight = false;
    loop {
        let waiting = carried
            .take()
            .or_else(|| after_flight.then(|| receiver.try_recv().ok()).flatten());
        let first = match waiting {
            Some(w) => w,
            None => {
                let Some(w) = receiver.recv().await else {
                    return;
                };
                if !limits.linger.is_zero() {
                    tokio::time::sleep(limits.linger).await;
                }
                w
            }
        };
        let mut bytes = first.record.bytes();
        let mut round = vec![first];
        while round.len() < limits.records {
            match receiver.try_recv() {
                Ok(w) if bytes + w.record.bytes() > limits.bytes => {
                    carried = Some(w);
                    break;
                }
                Ok(w) => {
                    bytes += w.record.bytes();
                    round.push(w);
                }
                Err(_) => break,
            }
        }
        let round_len = round.len();
        let mut answers: FuturesUnordered<_> = round
            .into_iter()
            .map(|w| {
                let delivery = handover.hand_over(&w.record, round_len);
                async move {
                    let result = match delivery {
                        Ok(delivery) => delivery.await,
                        Err(e) => Err(e),
                    };
                    let _ = w.answer.send(result);
                }
            })
            .collect();
        while answers.next().await.is_some() {
            unanswered.fetch_sub(1, Ordering::AcqRel);
        }
        after_flight = true;
    }
}

#[cfg(test)]
mod tests;
