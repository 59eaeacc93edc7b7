//! The sums of a vehicle container's delivery books, as its `GET /stats` answers them under
//! `totals` and as `fleet` adds them up over a fleet.

use serde::{Deserialize, Serialize};

/// Sums of event fates over vehicles (one container's, or a fleet's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Events created.
    pub generated: u64,
    /// Events ingest acknowledged.
    pub acknowledged: u64,
    /// Events sent again after a failed attempt.
    pub retried: u64,
    /// Events given up (outbox full, or still pending at shutdown).
    pub dropped: u64,
    /// Events ingest refused as invalid.
    pub rejected: u64,
    /// Events waiting to be acknowledged.
    pub pending: u64,
}

impl Totals {
    /// Adds `other` to these sums.
    pub fn add(&mut self, other: &Totals) {
        self.generated += other.generated;
        self.acknowledged += other.acknowledged;
        self.retried += other.retried;
        self.dropped += other.dropped;
        self.rejected += other.rejected;
        self.pending += other.pending;
    }

    /// Events whose fate is known (acknowledged, rejected or dropped): grows while delivery
    /// makes progress.
    pub fn settled(&self) -> u64 {
        self.acknowledged + self.rejected + self.dropped
    }

    /// Logs the sums (except `pending`) with `message`.
    pub fn log(&self, message: &str) {
        tracing::info!(
            generated = self.generated,
            acknowledged = self.acknowledged,
            retried = self.retried,
            rejected = self.rejected,
            dropped = self.dropped,
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_add_up_and_read_back() {
        let one = Totals {
            generated: 5,
            acknowledged: 3,
            retried: 1,
            dropped: 1,
            rejected: 0,
            pending: 1,
        };
        let mut sum = Totals::default();
        sum.add(&one);
        sum.add(&one);
        assert_eq!(sum.generated, 10);
        assert_eq!(sum.settled(), 8);
        let json = serde_json::to_string(&sum).unwrap();
        assert_eq!(serde_json::from_str::<Totals>(&json).unwrap(), sum);
    }
}
