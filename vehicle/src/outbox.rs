//! A vehicle's pending events: generated, not yet acknowledged, oldest first, bounded.
//!
//! Events leave the outbox in order, as one batch at a time taken from the front; a batch stays
//! in the outbox until ingest answered, so a retry sends the very same events again. When full,
//! the oldest event that is not part of the batch in flight is dropped.

use std::collections::VecDeque;

use fleet_common::TelemetryEvent;

/// Pending events of one vehicle.
#[derive(Debug, Clone)]
pub struct Outbox {
    events: VecDeque<TelemetryEvent>,
    capacity: usize,
    /// How many events at the front are in the batch in flight.
    in_flight: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` (at least 1) events.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            in_flight: 0,
        }
    }

    /// Events waiting, including the batch in flight.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Size of the batch in flight (0 when none).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Adds `event` at the back. When full, returns the event given up for it: the oldest one
    /// not in flight, or `event` itself if the whole outbox is in flight.
    pub fn push(&mut self, event: TelemetryEvent) -> Option<TelemetryEvent> {
        if self.events.len() < self.capacity {
            self.events.push_back(event);
            return None;
        }
        if self.in_flight >= self.events.len() {
            return Some(event);
        }
        let dropped = self.events.remove(self.in_flight);
        self.events.push_back(event);
        dropped
    }

    /// The next batch, copied from the front: up to `max` events. `None` when a batch is already
    /// in flight or nothing waits.
    pub fn start_batch(&mut self, max: usize) -> Option<Vec<TelemetryEvent>> {
        if self.in_flight > 0 || self.events.is_empty() {
            return None;
        }
        self.in_flight = self.events.len().min(max.max(1));
        Some(self.events.iter().take(self.in_flight).cloned().collect())
    }

    /// Ends the batch in flight: its first `done` events (answered for good) leave the outbox,
    /// the rest stay at the front for the next batch. Returns the events that left.
    pub fn finish_batch(&mut self, done: usize) -> Vec<TelemetryEvent> {
        let done = done.min(self.in_flight);
        self.in_flight = 0;
        self.events.drain(..done).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::event;

    fn seqs(events: &[TelemetryEvent]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn batches_keep_order_and_retries_resend_the_same_events() {
        let mut outbox = Outbox::new(10);
        for seq in 0..5 {
            assert!(outbox.push(event(seq)).is_none());
        }
        let first = outbox.start_batch(3).unwrap();
        assert_eq!(seqs(&first), [0, 1, 2]);
        assert!(outbox.start_batch(3).is_none(), "one batch at a time");
        outbox.finish_batch(0); // failed: nothing left
        let again = outbox.start_batch(3).unwrap();
        assert_eq!(again, first, "same events, same ids");
        assert_eq!(seqs(&outbox.finish_batch(2)), [0, 1]); // 2 acknowledged, 1 to resend
        assert_eq!(seqs(&outbox.start_batch(10).unwrap()), [2, 3, 4]);
        assert_eq!(outbox.finish_batch(3).len(), 3);
        assert!(outbox.is_empty());
    }

    #[test]
    fn when_full_the_oldest_not_in_flight_is_dropped() {
        let mut outbox = Outbox::new(4);
        for seq in 0..4 {
            outbox.push(event(seq));
        }
        outbox.start_batch(2).unwrap(); // 0 and 1 in flight
        assert_eq!(outbox.push(event(4)).map(|e| e.seq), Some(2));
        assert_eq!(outbox.push(event(5)).map(|e| e.seq), Some(3));
        assert_eq!(outbox.len(), 4);
        assert_eq!(seqs(&outbox.finish_batch(2)), [0, 1]);
        assert_eq!(seqs(&outbox.start_batch(9).unwrap()), [4, 5]);

        let mut tiny = Outbox::new(1);
        tiny.push(event(0));
        tiny.start_batch(5).unwrap();
        assert_eq!(
            tiny.push(event(1)).map(|e| e.seq),
            Some(1),
            "in-flight event kept"
        );
    }
}
