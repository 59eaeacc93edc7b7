//! Writing one batch: dead letters first (acknowledged before the offsets that cover them are
//! committed), then rows and offsets in one transaction; rows PostgreSQL refuses become dead
//! letters too, so a bad record never stops the stream.

use std::time::{Duration, Instant};

use crate::analytics::Aggregates;
use crate::batch::Batch;
use crate::dlq::{DeadLetters, DlqError};
use crate::sink::{Sink, SinkError};

/// What a committed batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct Flushed {
    /// Records in the batch.
    pub records: u64,
    /// Rows inserted (replays are skipped).
    pub inserted: u64,
    /// Rows that were already stored.
    pub duplicates: u64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Time from the start of the flush to the commit.
    pub elapsed: Duration,
    /// The aggregates the batch changed, as committed (to publish).
    pub aggregates: Aggregates,
}

/// Why a batch was not committed. The batch is unchanged except for dead letters already
/// acknowledged, so retrying it later neither loses nor repeats anything.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// A dead letter was not acknowledged.
    #[error(transparent)]
    DeadLetter(#[from] DlqError),
    /// PostgreSQL did not take the batch.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Writes `batch`: pending dead letters, then one transaction. When PostgreSQL refuses the
/// data, finds the refused rows, turns them into dead letters and tries again.
pub async fn flush<S: Sink, D: DeadLetters>(
    batch: &mut Batch,
    sink: &mut S,
    dead_letters: &D,
) -> Result<Flushed, FlushError> {
    let started = Instant::now();
    loop {
        send_dead_letters(batch, dead_letters).await?;
        match sink.write(batch).await {
            Ok(written) => {
                return Ok(Flushed {
                    records: batch.len() as u64,
                    inserted: written.inserted,
                    duplicates: written.rows - written.inserted,
                    dead_letters: batch.poison().len() as u64,
                    elapsed: started.elapsed(),
                    aggregates: written.aggregates,
                });
            }
            Err(e) if e.is_rejection() => {
                tracing::warn!(error = %e, rows = batch.entries().len(),
                    "PostgreSQL refused the batch; trying its rows one by one");
                let rejected = sink.find_rejected(batch.entries()).await?;
                if rejected.is_empty() {
                    // Not one row is to blame; report the original failure and retry later.
                    return Err(e.into());
                }
                batch.reject(rejected);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends the batch's pending dead letters all at once and records each acknowledgement, so a
/// retry resends only what did not arrive.
async fn send_dead_letters<D: DeadLetters>(
    batch: &mut Batch,
    dead_letters: &D,
) -> Result<(), DlqError> {
    let (indexes, sends): (Vec<usize>, Vec<_>) = batch
        .pending_dead_letters()
        .map(|(i, poison)| {
            tracing::warn!(partition = poison.record.partition, offset = poison.record.offset,
                reason = %poison.reason, "record goes to the dead-letter topic");
            (i, dead_letters.send(poison))
        })
        .unzip();
    let results = futures::future::join_all(sends).await;
    let mut first_error = None;
    for (i, result) in indexes.into_iter().zip(results) {
        match result {
            Ok(()) => batch.mark_dead_lettered(i),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::batch::{Entry, Record};
    use crate::dlq::{Poison, PoisonReason};
    use crate::row::DiagRow;
    use crate::row::fixtures::event;
    use crate::sink::Written;

    fn pg_error() -> tokio_postgres::Error {
        // A real driver error without a server: the connection string is malformed.
        "port=notanumber"
            .parse::<tokio_postgres::Config>()
            .unwrap_err()
    }

    fn down() -> SinkError {
        SinkError::Query {
            operation: "writing",
            target: "db:5432/av_telemetry".into(),
            source: pg_error(),
        }
    }

    /// A sink that answers from a script and records what it was given.
    #[derive(Default)]
    struct FakeSink {
        script: VecDeque<Result<(), SinkError>>,
        refuse: Vec<i64>,
        written: Vec<Vec<i64>>,
        probes: usize,
    }

    impl Sink for FakeSink {
        async fn write(&mut self, batch: &Batch) -> Result<Written, SinkError> {
            let offsets: Vec<i64> = batch.entries().iter().map(|e| e.record.offset).collect();
            if offsets.iter().any(|o| self.refuse.contains(o)) {
                return Err(rejection());
            }
            self.script.pop_front().unwrap_or(Ok(()))?;
            let rows = offsets.len() as u64;
            self.written.push(offsets);
            Ok(Written {
                inserted: rows.saturating_sub(1),
                rows,
                aggregates: Aggregates::default(),
            })
        }

        async fn find_rejected(
            &mut self,
            entries: &[Entry],
        ) -> Result<Vec<(usize, String)>, SinkError> {
            self.probes += 1;
            Ok(entries
                .iter()
                .enumerate()
                .filter(|(_, e)| self.refuse.contains(&e.record.offset))
                .map(|(i, _)| (i, "value too long".to_owned()))
                .collect())
        }
    }

    fn rejection() -> SinkError {
        SinkError::Rejected {
            operation: "writing",
            target: String::new(),
            source: pg_error(),
        }
    }

    /// Dead letters that fail a scripted number of times first.
    #[derive(Default)]
    struct FakeDlq {
        failures_left: Mutex<usize>,
        sent: Mutex<Vec<(i64, String)>>,
    }

    impl DeadLetters for FakeDlq {
        async fn send(&self, poison: &Poison) -> Result<(), DlqError> {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(DlqError {
                    dlq_topic: "telemetry.dlq".into(),
                    topic: "telemetry".into(),
                    partition: poison.record.partition,
                    offset: poison.record.offset,
                    source: rdkafka::error::KafkaError::Canceled,
                });
            }
            self.sent
                .lock()
                .unwrap()
                .push((poison.record.offset, poison.reason.to_string()));
            Ok(())
        }
    }

    fn batch(rows: &[i64], poison: &[i64]) -> Batch {
        let mut b = Batch::new();
        let record = |offset| Record {
            partition: 0,
            offset,
            key: None,
            payload: Some(b"x".to_vec()),
        };
        for &o in rows {
            let row = DiagRow::from_event(&event(o as u32), 0, o).unwrap();
            b.add(record(o), Ok(row));
        }
        for &o in poison {
            b.add(record(o), Err(PoisonReason::Empty));
        }
        b
    }

    #[tokio::test]
    async fn dead_letters_go_out_before_the_commit() {
        let mut b = batch(&[0, 1], &[2]);
        let mut sink = FakeSink::default();
        let dlq = FakeDlq::default();
        let out = flush(&mut b, &mut sink, &dlq).await.unwrap();
        assert_eq!(sink.written, vec![vec![0, 1]]);
        assert_eq!(
            *dlq.sent.lock().unwrap(),
            vec![(2, "empty value".to_owned())]
        );
        assert_eq!(
            (out.records, out.inserted, out.duplicates, out.dead_letters),
            (3, 1, 1, 1)
        );
    }

    #[tokio::test]
    async fn failed_dead_letter_stops_before_postgres_and_is_not_repeated() {
        let mut b = batch(&[0], &[1, 2]);
        let mut sink = FakeSink::default();
        let dlq = FakeDlq {
            failures_left: Mutex::new(1),
            ..Default::default()
        };
        // First dead letter fails: nothing is written.
        assert!(matches!(
            flush(&mut b, &mut sink, &dlq).await,
            Err(FlushError::DeadLetter(_))
        ));
        assert!(sink.written.is_empty());
        // The retry sends only the one that failed.
        flush(&mut b, &mut sink, &dlq).await.unwrap();
        let mut sent: Vec<i64> = dlq.sent.lock().unwrap().iter().map(|s| s.0).collect();
        sent.sort();
        assert_eq!(sent, vec![1, 2]);
    }

    #[tokio::test]
    async fn postgres_down_keeps_the_batch_for_a_retry() {
        let mut b = batch(&[0, 1], &[5]);
        let mut sink = FakeSink {
            script: VecDeque::from([Err(down())]),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        assert!(matches!(
            flush(&mut b, &mut sink, &dlq).await,
            Err(FlushError::Sink(_))
        ));
        assert_eq!(b.len(), 3);
        flush(&mut b, &mut sink, &dlq).await.unwrap();
        assert_eq!(sink.written, vec![vec![0, 1]]);
        assert_eq!(dlq.sent.lock().unwrap().len(), 1, "dead letter sent once");
    }

    #[tokio::test]
    async fn refused_rows_become_dead_letters_and_the_rest_is_stored() {
        let mut b = batch(&[0, 1, 2, 3], &[]);
        let mut sink = FakeSink {
            refuse: vec![2],
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        let out = flush(&mut b, &mut sink, &dlq).await.unwrap();
        assert_eq!(sink.probes, 1);
        assert_eq!(sink.written, vec![vec![0, 1, 3]]);
        assert_eq!(
            *dlq.sent.lock().unwrap(),
            vec![(2, "rejected by PostgreSQL: value too long".to_owned())]
        );
        assert_eq!(out.dead_letters, 1);
        assert_eq!(
            b.next_offsets()[&0],
            4,
            "the refused row's offset stays covered"
        );
    }
}
