//! Retry delays: exponential with jitter, never shorter than what the server asked for.

use std::time::Duration;

use rand::Rng;

/// First delay after a failure.
pub const BASE: Duration = Duration::from_millis(200);
/// Longest delay.
pub const CAP: Duration = Duration::from_secs(10);

/// The backoff state of one vehicle.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BASE }
    }
}

impl Backoff {
    /// The delay before the next attempt after a failure: between half and all of the current
    /// step (which then doubles up to [`CAP`]), and at least `retry_after`.
    pub fn failure(&mut self, rng: &mut impl Rng, retry_after: Option<Duration>) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(CAP);
        let jittered = step.mul_f64(rng.random_range(0.5..=1.0));
        jittered.max(retry_after.unwrap_or_default().min(CAP * 6))
    }

    /// After a success: start again from [`BASE`].
    pub fn reset(&mut self) {
        self.next = BASE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    #[test]
    fn grows_caps_honours_retry_after_and_resets() {
        let mut rng = rng(1, 1, Stream::Timing);
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.failure(&mut rng, None)).collect();
        assert!(delays[0] <= BASE && delays[0] >= BASE / 2);
        assert!(delays.iter().all(|d| *d <= CAP));
        assert!(delays[9] >= CAP / 2);
        assert!(
            backoff.failure(&mut rng, Some(Duration::from_secs(30))) >= Duration::from_secs(30)
        );
        backoff.reset();
        assert!(backoff.failure(&mut rng, None) <= BASE);
    }
}
