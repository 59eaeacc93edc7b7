//! Writing one batch: dead letters first (acknowledged before the offsets that cover them are
//! committed), then rows and offsets in one transaction; rows PostgreSQL refuses for their own
//! values become dead letters too, so a bad record never stops the stream. A batch that runs
//! out of time is split in halves (down to single rows), the offsets committed with its last
//! part; any other failure keeps the batch for a retry and dead-letters nothing.

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
/// acknowledged and parts already committed (see [`crate::batch::Progress`]), so retrying it
/// later neither loses nor repeats anything.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// A dead letter was not acknowledged.
    #[error(transparent)]
    DeadLetter(#[from] DlqError),
    /// PostgreSQL did not take the batch.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Writes `batch`: pending dead letters, then one transaction, or one per part once the batch
/// timed out. When PostgreSQL refuses a record's value, finds the refused rows, turns them into
/// dead letters and tries again.
pub async fn flush<S: Sink, D: DeadLetters>(
    batch: &mut Batch,
    sink: &mut S,
    dead_letters: &D,
) -> Result<Flushed, FlushError> {
    let started = Instant::now();
    loop {
        send_dead_letters(batch, dead_letters).await?;
        let total = batch.entries().len();
        let first = batch.progress().stored;
        let len = batch
            .progress()
            .part_len
            .map_or(total - first, |n| n.min(total - first));
        let last = first + len == total;
        let part = &batch.entries()[first..first + len];
        let offsets = last.then(|| batch.next_offsets());
        match sink.write(part, offsets).await {
            Ok(written) => {
                let progress = batch.progress_mut();
                progress.stored += len;
                progress.inserted += written.inserted;
                let a = &mut progress.aggregates;
                a.vehicles.extend(written.aggregates.vehicles);
                a.windows.extend(written.aggregates.windows);
                a.histograms.extend(written.aggregates.histograms);
                a.late_dropped += written.aggregates.late_dropped;
                if last {
                    let progress = batch.progress();
                    return Ok(Flushed {
                        records: batch.len() as u64,
                        inserted: progress.inserted,
                        duplicates: total as u64 - progress.inserted,
                        dead_letters: batch.poison().len() as u64,
                        elapsed: started.elapsed(),
                        aggregates: progress.aggregates.clone(),
                    });
                }
            }
            Err(e) if e.is_rejection() => {
                tracing::warn!(error = %e, rows = len,
                    "PostgreSQL refused a value; looking for the rows to blame");
                let rejected = sink.find_rejected(part).await?;
                if rejected.is_empty() {
                    // Not one row is to blame; report the original failure and retry later.
                    return Err(e.into());
                }
                batch.reject(
                    rejected
                        .into_iter()
                        .map(|(i, reason)| (first + i, reason))
                        .collect(),
                );
            }
            Err(e) if e.is_timeout() && len > 1 => {
                let half = len.div_ceil(2);
                tracing::warn!(error = %e, rows = len, part = half,
                    "the batch did not fit the time limit; writing it in smaller parts");
                batch.progress_mut().part_len = Some(half);
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
pub(crate) mod tests {
    use std::collections::{BTreeMap, VecDeque};
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
        /// Parts larger than this time out.
        fits: Option<usize>,
        written: Vec<Vec<i64>>,
        /// Per write: were the offsets committed with it.
        committed_offsets: Vec<bool>,
        probes: usize,
    }

    impl Sink for FakeSink {
        async fn write(
            &mut self,
            entries: &[Entry],
            next_offsets: Option<&BTreeMap<i32, i64>>,
        ) -> Result<Written, SinkError> {
            let offsets: Vec<i64> = entries.iter().map(|e| e.record.offset).collect();
            if offsets.iter().any(|o| self.refuse.contains(o)) {
                return Err(rejection());
            }
            if self.fits.is_some_and(|n| entries.len() > n) {
                return Err(timeout());
            }
            self.script.pop_front().unwrap_or(Ok(()))?;
            let rows = offsets.len() as u64;
            self.committed_offsets.push(next_offsets.is_some());
            self.written.push(offsets);
            Ok(Written {
                inserted: rows.saturating_sub(1),
                rows,
                aggregates: Aggregates::default(),
                staged: false,
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

    fn timeout() -> SinkError {
        SinkError::Timeout {
            operation: "writing",
            target: String::new(),
            after: Duration::from_secs(5),
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
    pub(crate) struct FakeDlq {
        failures_left: Mutex<usize>,
        /// (offset, reason) of every dead letter acknowledged.
        pub(crate) sent: Mutex<Vec<(i64, String)>>,
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
            timestamp_ms: None,
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

    #[tokio::test]
    async fn a_server_side_failure_dead_letters_nothing_and_keeps_the_batch() {
        let mut b = batch(&[0, 1, 2], &[]);
        let mut sink = FakeSink {
            script: VecDeque::from([Err(down()), Err(down())]),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        for _ in 0..2 {
            assert!(matches!(
                flush(&mut b, &mut sink, &dlq).await,
                Err(FlushError::Sink(_))
            ));
            assert_eq!(b.entries().len(), 3);
            assert!(b.poison().is_empty());
        }
        assert_eq!(sink.probes, 0, "no row is blamed for a server-side failure");
        flush(&mut b, &mut sink, &dlq).await.unwrap();
        assert_eq!(sink.written, vec![vec![0, 1, 2]]);
        assert!(dlq.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_timed_out_batch_is_split_and_the_offsets_go_with_its_last_part() {
        let mut b = batch(&(0..10).collect::<Vec<_>>(), &[]);
        let mut sink = FakeSink {
            fits: Some(3),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        let out = flush(&mut b, &mut sink, &dlq).await.unwrap();
        // 10 timed out, 5 timed out, parts of 3 fit.
        assert_eq!(
            sink.written,
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
        );
        assert_eq!(sink.committed_offsets, vec![false, false, false, true]);
        assert_eq!(out.records, 10);
        assert_eq!(out.inserted + out.duplicates, 10);
        assert!(dlq.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_retry_resumes_after_the_parts_already_committed() {
        let mut b = batch(&(0..8).collect::<Vec<_>>(), &[]);
        let mut sink = FakeSink {
            fits: Some(4),
            // The first part commits, the second finds PostgreSQL down.
            script: VecDeque::from([Ok(()), Err(down())]),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        assert!(flush(&mut b, &mut sink, &dlq).await.is_err());
        flush(&mut b, &mut sink, &dlq).await.unwrap();
        assert_eq!(sink.written, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(sink.committed_offsets, vec![false, true]);
    }

    #[tokio::test]
    async fn a_single_row_that_times_out_is_retried_later_not_dead_lettered() {
        let mut b = batch(&[0, 1], &[]);
        let mut sink = FakeSink {
            fits: Some(0),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        let err = flush(&mut b, &mut sink, &dlq).await.unwrap_err();
        assert!(
            matches!(err, FlushError::Sink(ref e) if e.is_timeout()),
            "{err}"
        );
        assert_eq!(b.entries().len(), 2);
        assert!(dlq.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_largest_allowed_batch_is_written_when_only_small_parts_fit() {
        let max = fleet_common::config::BatchMaxRecords::MAX as i64;
        let mut b = batch(&(0..max).collect::<Vec<_>>(), &[]);
        let mut sink = FakeSink {
            fits: Some(7_000),
            ..Default::default()
        };
        let dlq = FakeDlq::default();
        let out = flush(&mut b, &mut sink, &dlq).await.unwrap();
        let stored: Vec<i64> = sink.written.concat();
        assert_eq!(
            stored,
            (0..max).collect::<Vec<_>>(),
            "every row once, in order"
        );
        assert!(sink.written.iter().all(|p| p.len() <= 7_000));
        assert_eq!(sink.committed_offsets.iter().filter(|c| **c).count(), 1);
        assert_eq!(out.records, max as u64);
    }
}
