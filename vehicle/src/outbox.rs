//! A vehicle's pending events: generated, not yet acknowledged, oldest first, bounded.
//!
//! Events leave the outbox in order, as one batch at a time taken from the front; a batch stays
//! in the outbox until ingest answered, so a retry sends the very same events again. When full,
//! the oldest event that is not part of the batch in flight is dropped.

use std::collections::VecDeque;

/// Pending items (encoded events) of one vehicle.
#[derive(Debug, Clone)]
pub struct Outbox<T> {
    events: VecDeque<T>,
    capacity: usize,
    /// How many events at the front are in the batch in flight.
    in_flight: usize,
}

impl<T> Outbox<T> {
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
    pub fn push(&mut self, event: T) -> Option<T> {
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

    /// Starts the next batch: up to `max` events from the front. Returns them, or `None` when a
    /// batch is already in flight or nothing waits.
    pub fn start_batch(&mut self, max: usize) -> Option<impl Iterator<Item = &T>> {
        if self.in_flight > 0 || self.events.is_empty() {
            return None;
        }
        self.in_flight = self.events.len().min(max.max(1));
        Some(self.events.iter().take(self.in_flight))
    }

    /// Ends the batch in flight: its events for which `resend(position in batch, event)` is
    /// false leave the outbox and are returned in order with their position; the others stay
    /// at the front, in order, for the next batch.
    pub fn finish_batch(&mut self, mut resend: impl FnMut(usize, &T) -> bool) -> Vec<(usize, T)> {
        let sent: Vec<T> = self.events.drain(..self.in_flight).collect();
        self.in_flight = 0;
        let mut done = Vec::new();
        let mut again = Vec::new();
        for (i, event) in sent.into_iter().enumerate() {
            if resend(i, &event) {
                again.push(event);
            } else {
                done.push((i, event));
            }
        }
        for event in again.into_iter().rev() {
            self.events.push_front(event);
        }
        done
    }

    /// Takes every event out (at shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.in_flight = 0;
        self.events.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(outbox: &mut Outbox<u64>, max: usize) -> Option<Vec<u64>> {
        outbox.start_batch(max).map(|b| b.copied().collect())
    }

    fn left(done: Vec<(usize, u64)>) -> Vec<u64> {
        done.into_iter().map(|(_, e)| e).collect()
    }

    #[test]
    fn batches_keep_order_and_retries_resend_the_same_events() {
        let mut outbox = Outbox::new(10);
        for seq in 0..5 {
            assert!(outbox.push(seq).is_none());
        }
        let first = start(&mut outbox, 3).unwrap();
        assert_eq!(first, [0, 1, 2]);
        assert!(start(&mut outbox, 3).is_none(), "one batch at a time");
        assert!(outbox.finish_batch(|_, _| true).is_empty()); // failed: nothing left
        assert_eq!(start(&mut outbox, 3).unwrap(), first, "same events");
        // 0 and 2 acknowledged, 1 to resend: it stays first.
        assert_eq!(left(outbox.finish_batch(|i, _| i == 1)), [0, 2]);
        assert_eq!(start(&mut outbox, 10).unwrap(), [1, 3, 4]);
        assert_eq!(outbox.finish_batch(|_, _| false).len(), 3);
        assert!(outbox.is_empty());
    }

    #[test]
    fn when_full_the_oldest_not_in_flight_is_dropped() {
        let mut outbox = Outbox::new(4);
        for seq in 0..4 {
            outbox.push(seq);
        }
        start(&mut outbox, 2).unwrap(); // 0 and 1 in flight
        assert_eq!(outbox.push(4), Some(2));
        assert_eq!(outbox.push(5), Some(3));
        assert_eq!(outbox.len(), 4);
        assert_eq!(left(outbox.finish_batch(|_, _| false)), [0, 1]);
        assert_eq!(start(&mut outbox, 9).unwrap(), [4, 5]);
        assert_eq!(outbox.drain().collect::<Vec<_>>(), [4, 5]);
        assert_eq!(outbox.in_flight(), 0);

        let mut tiny = Outbox::new(1);
        tiny.push(0);
        start(&mut tiny, 5).unwrap();
        assert_eq!(tiny.push(1), Some(1), "in-flight event kept");
    }
}
