//! When vehicles report: the interval and its jitter, live-tunable through a
//! [`tokio::sync::watch`] channel that the scheduler reads at every report.

use std::time::Duration;

use rand::Rng;

/// Report timing of every vehicle of the process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Mean time between two reports of one vehicle.
    pub interval: Duration,
    /// Each step is this share of the interval early or late at random, in `[0, 1)`.
    pub jitter: f64,
}

impl Timing {
    /// The next step: `interval * (1 ± jitter)`, uniformly; never zero.
    pub fn step(&self, rng: &mut impl Rng) -> Duration {
        let jitter = self.jitter.clamp(0.0, 0.99);
        let factor = if jitter > 0.0 {
            rng.random_range(1.0 - jitter..=1.0 + jitter)
        } else {
            1.0
        };
        self.interval.mul_f64(factor).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    #[test]
    fn steps_stay_within_the_jitter_and_average_the_interval() {
        let timing = Timing {
            interval: Duration::from_secs(1),
            jitter: 0.2,
        };
        let mut r = rng(1, 1, Stream::Timing);
        let steps: Vec<f64> = (0..10_000)
            .map(|_| timing.step(&mut r).as_secs_f64())
            .collect();
        assert!(
            steps.iter().all(|s| (0.8..=1.2).contains(s)),
            "out of bounds"
        );
        let (lo, hi) = steps
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
        assert!(lo < 0.81 && hi > 1.19, "the whole range is used: {lo} {hi}");
        let mean = steps.iter().sum::<f64>() / steps.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");

        let exact = Timing {
            interval: Duration::from_millis(250),
            jitter: 0.0,
        };
        assert!((0..100).all(|_| exact.step(&mut r) == Duration::from_millis(250)));
    }
}
