//! Entries for the sink's unit tests.

use crate::batch::{Entry, Record};
use crate::row::DiagRow;
use crate::row::fixtures::event;

/// The entry of test event `n` at partition 1, offset `n + 100`.
pub(super) fn entry(n: u32) -> Entry {
    Entry {
        row: DiagRow::from_event(&event(n), 1, i64::from(n) + 100).unwrap(),
        record: Record {
            partition: 1,
            offset: i64::from(n) + 100,
            key: None,
            payload: None,
            timestamp_ms: None,
        },
    }
}
