//! A batch: the records read since the last commit, split into rows and poison, with the next
//! offset of every partition they came from. One batch is one PostgreSQL transaction, unless it
//! does not fit the statement time limit: then it is written in parts ([`Progress`]), the
//! partitions' offsets with the last part, so a replay after a crash between parts inserts
//! nothing twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::analytics::Aggregates;
use crate::dlq::{Poison, PoisonReason};
use crate::row::DiagRow;

/// A record as read from the topic, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key (the VIN for records that ingest produced).
    pub key: Option<Vec<u8>>,
    /// Its value; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Its timestamp, milliseconds since the Unix epoch, when it has one: for the records that
    /// ingest produced, the time ingest handed it to its producer.
    pub timestamp_ms: Option<i64>,
}

/// A row to store, with the record it came from (kept in case PostgreSQL refuses the row and it
/// has to become a dead letter after all).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The row.
    pub row: DiagRow,
    /// The record.
    pub record: Record,
}

/// Records gathered for one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    entries: Vec<Entry>,
    poison: Vec<Poison>,
    /// Per poison record: acknowledged by the dead-letter topic.
    delivered: Vec<bool>,
    next_offsets: BTreeMap<i32, i64>,
    opened_at: Option<Instant>,
    progress: Progress,
}

/// How far a batch written in parts got: what committed parts stored, and the part size that
/// fits the statement time limit (halved on every timeout). Kept across retries, so a retry
/// resumes after the committed parts and their aggregates are still published.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Progress {
    /// Rows (a prefix of [`Batch::entries`]) already committed.
    pub stored: usize,
    /// Rows per part; `None`: the whole batch in one transaction.
    pub part_len: Option<usize>,
    /// Rows the committed parts really inserted.
    pub inserted: u64,
    /// The aggregates the committed parts changed, in commit order.
    pub aggregates: Aggregates,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record with its DLQ decision.
    pub fn add(&mut self, record: Record, verdict: Result<DiagRow, PoisonReason>) {
        self.opened_at.get_or_insert_with(Instant::now);
        let next = record.offset + 1;
        self.next_offsets
            .entry(record.partition)
            .and_modify(|o| *o = (*o).max(next))
            .or_insert(next);
        match verdict {
            Ok(row) => self.entries.push(Entry { row, record }),
            Err(reason) => self.push_poison(Poison { record, reason }),
        }
    }

    fn push_poison(&mut self, poison: Poison) {
        self.poison.push(poison);
        self.delivered.push(false);
    }

    /// Number of records, rows and poison.
    pub fn len(&self) -> usize {
        self.entries.len() + self.poison.len()
    }

    /// True when no record was added since the last [`clear`](Self::clear).
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// When the batch must be written at the latest: `max_wait` after its first record.
    pub fn deadline(&self, max_wait: Duration) -> Option<Instant> {
        self.opened_at.map(|t| t + max_wait)
    }

    /// The rows to store.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every record of the batch: the rows' records, then the poison.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.entries
            .iter()
            .map(|e| &e.record)
            .chain(self.poison.iter().map(|p| &p.record))
    }

    /// All poison records of the batch.
    pub fn poison(&self) -> &[Poison] {
        &self.poison
    }

    /// Poison records not yet acknowledged by the dead-letter topic, with their index.
    pub fn pending_dead_letters(&self) -> impl Iterator<Item = (usize, &Poison)> {
        self.poison
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.delivered[*i])
    }

    /// Records that the dead letter at `index` was acknowledged.
    pub fn mark_dead_lettered(&mut self, index: usize) {
        if let Some(d) = self.delivered.get_mut(index) {
            *d = true;
        }
    }

    /// How far writing the batch in parts got.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Changes how far writing the batch in parts got.
    pub fn progress_mut(&mut self) -> &mut Progress {
        &mut self.progress
    }

    /// Moves the rows at `rejected` (indexes into [`entries`](Self::entries), with PostgreSQL's
    /// reason) to the poison records. Their offsets stay covered by the batch. Rows already
    /// committed (below [`Progress::stored`]) are never rejected.
    pub fn reject(&mut self, rejected: Vec<(usize, String)>) {
        let mut reasons: BTreeMap<usize, String> = rejected.into_iter().collect();
        let entries = std::mem::take(&mut self.entries);
        for (i, entry) in entries.into_iter().enumerate() {
            match reasons.remove(&i) {
                Some(reason) => self.push_poison(Poison {
                    record: entry.record,
                    reason: PoisonReason::Rejected(reason),
                }),
                None => self.entries.push(entry),
            }
        }
    }

    /// The offset to resume from, per partition: one past the last record of the batch.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next_offsets
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.poison.clear();
        self.delivered.clear();
        self.next_offsets.clear();
        self.opened_at = None;
        self.progress = Progress::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::event;

    fn record(partition: i32, offset: i64) -> Record {
        Record {
            partition,
            offset,
            key: None,
            payload: Some(b"{}".to_vec()),
            timestamp_ms: None,
        }
    }

    fn row(partition: i32, offset: i64) -> Result<DiagRow, PoisonReason> {
        Ok(DiagRow::from_event(&event(offset as u32), partition, offset).unwrap())
    }

    #[test]
    fn tracks_next_offset_per_partition() {
        let mut b = Batch::new();
        assert!(b.is_empty());
        b.add(record(0, 10), row(0, 10));
        b.add(record(2, 5), row(2, 5));
        b.add(record(0, 11), Err(PoisonReason::Empty));
        b.add(record(0, 12), row(0, 12));
        assert_eq!(b.len(), 4);
        assert_eq!(b.entries().len(), 3);
        assert_eq!(b.poison().len(), 1);
        assert_eq!(
            b.next_offsets()
                .iter()
                .map(|(p, o)| (*p, *o))
                .collect::<Vec<_>>(),
            vec![(0, 13), (2, 6)]
        );
    }

    #[test]
    fn offsets_never_go_back_within_a_batch() {
        let mut b = Batch::new();
        b.add(record(1, 8), row(1, 8));
        b.add(record(1, 3), row(1, 3));
        assert_eq!(b.next_offsets()[&1], 9);
    }

    #[test]
    fn deadline_starts_with_the_first_record() {
        let mut b = Batch::new();
        let wait = Duration::from_millis(200);
        assert_eq!(b.deadline(wait), None);
        let before = Instant::now();
        b.add(record(0, 0), row(0, 0));
        let deadline = b.deadline(wait).unwrap();
        assert!(deadline >= before + wait && deadline <= Instant::now() + wait);
        b.add(record(0, 1), row(0, 1));
        assert_eq!(b.deadline(wait), Some(deadline));
    }

    #[test]
    fn a_batch_of_poison_only_still_moves_offsets() {
        let mut b = Batch::new();
        b.add(record(0, 4), Err(PoisonReason::NotJson("x".into())));
        assert!(!b.is_empty());
        assert!(b.entries().is_empty());
        assert_eq!(b.next_offsets()[&0], 5);
    }

    #[test]
    fn dead_letter_progress_survives_retries() {
        let mut b = Batch::new();
        b.add(record(0, 0), Err(PoisonReason::Empty));
        b.add(record(0, 1), Err(PoisonReason::Empty));
        b.add(record(0, 2), Err(PoisonReason::Empty));
        assert_eq!(b.pending_dead_letters().count(), 3);
        b.mark_dead_lettered(1);
        let pending: Vec<i64> = b
            .pending_dead_letters()
            .map(|(_, p)| p.record.offset)
            .collect();
        assert_eq!(pending, vec![0, 2]);
        b.mark_dead_lettered(0);
        b.mark_dead_lettered(2);
        b.mark_dead_lettered(7);
        assert_eq!(b.pending_dead_letters().count(), 0);
    }

    #[test]
    fn rejected_rows_become_pending_poison() {
        let mut b = Batch::new();
        for o in 0..4 {
            b.add(record(0, o), row(0, o));
        }
        b.reject(vec![(1, "bad".into()), (3, "worse".into())]);
        let kept: Vec<i64> = b.entries().iter().map(|e| e.record.offset).collect();
        assert_eq!(kept, vec![0, 2]);
        let poison: Vec<(i64, String)> = b
            .pending_dead_letters()
            .map(|(_, p)| (p.record.offset, p.reason.to_string()))
            .collect();
        assert_eq!(
            poison,
            vec![
                (1, "rejected by PostgreSQL: bad".to_owned()),
                (3, "rejected by PostgreSQL: worse".to_owned())
            ]
        );
        assert_eq!(b.next_offsets()[&0], 4);
    }

    #[test]
    fn clear_resets_everything() {
        let mut b = Batch::new();
        b.add(record(0, 0), Err(PoisonReason::Empty));
        b.mark_dead_lettered(0);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.len(), 0);
        assert_eq!(b.deadline(Duration::from_secs(1)), None);
        b.add(record(0, 1), Err(PoisonReason::Empty));
        assert_eq!(b.pending_dead_letters().count(), 1);
    }
}
