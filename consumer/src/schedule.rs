//! When the pipelined loop starts a write: one write is in flight at a time while records keep
//! being received into the next (open) batch. A batch whose write failed is written again
//! before the open one, so offsets are stored in the order the records were read. The open
//! batch is written as soon as no write is in flight and it is full or has lingered
//! `max_wait` since its first record; while a write is in flight, records simply gather (up
//! to `max_records`, then receiving stops until the write finishes).

use std::time::Instant;

use crate::pipeline::BatchLimits;

/// What the loop knows about its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// A write (or a check of PostgreSQL) is in flight.
    pub writing: bool,
    /// A failure was met: nothing is written before the retry time.
    pub retrying: bool,
    /// A batch whose write failed waits to be written again.
    pub pending: bool,
    /// Records in the open batch.
    pub open_len: usize,
    /// When the open batch's linger ends (`max_wait` after its first record).
    pub open_deadline: Option<Instant>,
}

/// What to write now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing (a write is in flight, a retry is due later, or the open batch may still grow).
    Nothing,
    /// The batch whose write failed.
    Pending,
    /// The open batch.
    Open,
}

/// What to write at `now`.
pub fn next(state: State, limits: BatchLimits, now: Instant) -> Next {
    if state.writing || state.retrying {
        return Next::Nothing;
    }
    if state.pending {
        return Next::Pending;
    }
    let full = state.open_len >= limits.max_records;
    let lingered = state.open_deadline.is_some_and(|d| d <= now);
    if state.open_len > 0 && (full || lingered) {
        Next::Open
    } else {
        Next::Nothing
    }
}

/// When the open batch's linger ends, if that is what the loop waits for (no write in flight,
/// no retry due).
pub fn linger_until(state: State) -> Option<Instant> {
    if state.writing || state.retrying || state.pending {
        None
    } else {
        state.open_deadline
    }
}

/// True while the open batch has room: a full open batch stops receiving until a write takes it.
pub fn may_receive(open_len: usize, limits: BatchLimits) -> bool {
    open_len < limits.max_records
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_records: 10,
        max_wait: Duration::from_millis(5),
    };

    fn idle() -> State {
        State {
            writing: false,
            retrying: false,
            pending: false,
            open_len: 0,
            open_deadline: None,
        }
    }

    #[test]
    fn an_open_batch_is_written_once_its_linger_ended_or_it_is_full() {
        let now = Instant::now();
        let lingering = State {
            open_len: 3,
            open_deadline: Some(now + Duration::from_millis(2)),
            ..idle()
        };
        assert_eq!(next(lingering, LIMITS, now), Next::Nothing);
        assert_eq!(linger_until(lingering), lingering.open_deadline);
        assert_eq!(
            next(lingering, LIMITS, now + Duration::from_millis(2)),
            Next::Open
        );
        let full = State {
            open_len: 10,
            ..lingering
        };
        assert_eq!(next(full, LIMITS, now), Next::Open);
        assert_eq!(next(idle(), LIMITS, now), Next::Nothing);
    }

    #[test]
    fn one_write_at_a_time_and_records_gather_meanwhile() {
        let now = Instant::now();
        let writing = State {
            writing: true,
            open_len: 10,
            open_deadline: Some(now - Duration::from_secs(1)),
            ..idle()
        };
        assert_eq!(next(writing, LIMITS, now), Next::Nothing);
        assert_eq!(
            linger_until(writing),
            None,
            "the write's end wakes the loop"
        );
        assert!(may_receive(9, LIMITS));
        assert!(
            !may_receive(10, LIMITS),
            "a full open batch stops receiving"
        );
    }

    #[test]
    fn a_failed_batch_goes_first_and_only_after_its_retry_time() {
        let now = Instant::now();
        let failed = State {
            retrying: true,
            pending: true,
            open_len: 10,
            open_deadline: Some(now - Duration::from_secs(1)),
            ..idle()
        };
        assert_eq!(next(failed, LIMITS, now), Next::Nothing);
        assert_eq!(linger_until(failed), None);
        let due = State {
            retrying: false,
            ..failed
        };
        assert_eq!(next(due, LIMITS, now), Next::Pending);
        let after = State {
            pending: false,
            ..due
        };
        assert_eq!(next(after, LIMITS, now), Next::Open);
    }
}
