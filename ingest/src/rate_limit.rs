//! Per-vehicle rate limiting (`INGEST_RATE_LIMIT_PER_VIN`): one token bucket per VIN, refilled at
//! the configured rate and holding up to one second's worth of events, so a vehicle may send a
//! burst of that many events at once and then that many per second.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fleet_common::Vin;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// After this many checks, the buckets of vehicles that have been quiet long enough to be full
/// again are dropped, so memory follows the vehicles that are active rather than all ever seen.
const CHECKS_PER_CLEANUP: u64 = 4_096;

/// The buckets of every vehicle.
pub struct VinRateLimiter {
    limiter: DefaultKeyedRateLimiter<Vin>,
    checks: AtomicU64,
}

impl VinRateLimiter {
    /// A limiter allowing `per_second` events per second per VIN, in bursts of up to as many.
    pub fn new(per_second: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second)),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one token from `vin`'s bucket, or says how long until one is there.
    pub fn check(&self, vin: &Vin) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % CHECKS_PER_CLEANUP
            == CHECKS_PER_CLEANUP - 1
        {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(vin)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// How many vehicles have a bucket.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_a_wait_per_vin() {
        let limiter = VinRateLimiter::new(NonZeroU32::new(2).unwrap());
        let (a, b) = (Vin::from_serial("YV1", 1), Vin::from_serial("YV1", 2));
        assert_eq!(limiter.check(&a), Ok(()));
        assert_eq!(limiter.check(&a), Ok(()));
        let wait = limiter.check(&a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another vehicle has its own bucket.
        assert_eq!(limiter.check(&b), Ok(()));
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn the_bucket_refills() {
        let limiter = VinRateLimiter::new(NonZeroU32::new(20).unwrap());
        let vin = Vin::from_serial("YV1", 1);
        while limiter.check(&vin).is_ok() {}
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limiter.check(&vin), Ok(()));
    }
}
