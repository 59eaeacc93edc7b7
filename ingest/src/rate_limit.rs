//! Per-vehicle rate limiting (`INGEST_RATE_LIMIT_PER_VIN`, then the live key
//! `ingest.rate_limit_per_vin`): one token bucket per VIN, refilled at the current rate and
//! holding up to one second's worth of events, so a vehicle may send a burst of that many events
//! at once and then that many per second.
//!
//! The rate can change while ingest runs ([`VinRateLimiter::set_per_second`]): every bucket,
//! existing ones included, refills at the new rate from then on and holds at most the new
//! second's worth, so a lower rate holds at once and a higher one is felt at once. 0 turns the
//! limit off (every record passes and the buckets are dropped); a later rate starts with full
//! buckets.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fleet_common::Vin;

/// After this many checks, the buckets of vehicles that have been quiet long enough to be full
/// again are dropped, so memory follows the vehicles that are active rather than all ever seen.
const CHECKS_PER_CLEANUP: u64 = 4_096;
/// Independent locks over the buckets, so that concurrent requests rarely wait for each other.
const SHARDS: usize = 16;

/// One vehicle's bucket: its tokens when last checked.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// The tokens at `now` with `rate` tokens per second, at most `rate`.
    fn refilled(&self, now: Instant, rate: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate).min(rate)
    }
}

/// The buckets of every vehicle and the rate they follow.
#[derive(Debug)]
pub struct VinRateLimiter {
    /// Events per second per VIN; 0: off.
    per_second: AtomicU32,
    shards: Vec<Mutex<HashMap<Vin, Bucket>>>,
    hasher: RandomState,
    checks: AtomicU64,
}

impl VinRateLimiter {
    /// A limiter allowing `per_second` events per second per VIN, in bursts of up to as many;
    /// 0: off.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: AtomicU32::new(per_second),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// The rate now: events per second per VIN, 0 when off.
    pub fn per_second(&self) -> u32 {
        self.per_second.load(Ordering::Relaxed)
    }

    /// Follows a new rate from now on (see the module documentation); whether it changed.
    pub fn set_per_second(&self, per_second: u32) -> bool {
        let before = self.per_second.swap(per_second, Ordering::Relaxed);
        if per_second == 0 {
            for shard in &self.shards {
                lock(shard).clear();
            }
        }
        before != per_second
    }

    /// Takes one token from `vin`'s bucket, or says how long until one is there.
    pub fn check(&self, vin: &Vin) -> Result<(), Duration> {
        self.check_at(vin, Instant::now())
    }

    /// [`Self::check`] at `now`.
    fn check_at(&self, vin: &Vin, now: Instant) -> Result<(), Duration> {
        let per_second = self.per_second();
        if per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(per_second);
        if self.checks.fetch_add(1, Ordering::Relaxed) % CHECKS_PER_CLEANUP
            == CHECKS_PER_CLEANUP - 1
        {
            self.drop_full(now, rate);
        }
        let mut shard = lock(&self.shards[self.shard_of(vin)]);
        let bucket = shard.entry(vin.clone()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let tokens = bucket.refilled(now, rate);
        *bucket = Bucket {
            tokens: if tokens >= 1.0 { tokens - 1.0 } else { tokens },
            at: now.max(bucket.at),
        };
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }

    /// Drops the buckets that are full again at `now`: a new one would be the same.
    fn drop_full(&self, now: Instant, rate: f64) {
        for shard in &self.shards {
            lock(shard).retain(|_, bucket| bucket.refilled(now, rate) < rate);
        }
    }

    fn shard_of(&self, vin: &Vin) -> usize {
        // The remainder is below SHARDS, so it fits.
        (self.hasher.hash_one(vin) % SHARDS as u64) as usize
    }

    /// How many vehicles have a bucket.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// A shard's map; every change is one assignment, so it stays consistent if a holder panicked.
fn lock(shard: &Mutex<HashMap<Vin, Bucket>>) -> MutexGuard<'_, HashMap<Vin, Bucket>> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_then_refusal_with_a_wait_per_vin() {
        let limiter = VinRateLimiter::new(2);
        let (a, b) = (Vin::from_serial("YV1", 1), Vin::from_serial("YV1", 2));
        assert_eq!(limiter.check(&a), Ok(()));
        assert_eq!(limiter.check(&a), Ok(()));
        let wait = limiter.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= ms(500), "{wait:?}");
        // Another vehicle has its own bucket.
        assert_eq!(limiter.check(&b), Ok(()));
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn the_bucket_refills() {
        let limiter = VinRateLimiter::new(20);
        let vin = Vin::from_serial("YV1", 1);
        while limiter.check(&vin).is_ok() {}
        std::thread::sleep(ms(60));
        assert_eq!(limiter.check(&vin), Ok(()));
    }

    #[test]
    fn existing_buckets_follow_a_lower_rate_at_once() {
        let limiter = VinRateLimiter::new(10);
        let vin = Vin::from_serial("YV1", 1);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(limiter.check_at(&vin, t0), Ok(()));
        }
        // 8 tokens left at 10/s; at 2/s the bucket holds 2 at most.
        assert!(limiter.set_per_second(2));
        assert!(!limiter.set_per_second(2), "the same rate is no change");
        assert_eq!(limiter.check_at(&vin, t0), Ok(()));
        assert_eq!(limiter.check_at(&vin, t0), Ok(()));
        let wait = limiter.check_at(&vin, t0).unwrap_err();
        assert_eq!(wait, ms(500), "one token at 2/s");
        // And it refills at 2/s: a token after 500 ms, not after 100 ms.
        assert!(limiter.check_at(&vin, t0 + ms(100)).is_err());
        assert_eq!(limiter.check_at(&vin, t0 + ms(600)), Ok(()));
        assert_eq!(limiter.tracked(), 1, "the same bucket throughout");
    }

    #[test]
    fn existing_buckets_follow_a_higher_rate_at_once() {
        let limiter = VinRateLimiter::new(1);
        let vin = Vin::from_serial("YV1", 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check_at(&vin, t0), Ok(()));
        let wait = limiter.check_at(&vin, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // At 100/s the empty bucket has two and a half tokens 25 ms later, and holds up to 100.
        limiter.set_per_second(100);
        assert_eq!(limiter.check_at(&vin, t0 + ms(25)), Ok(()));
        assert_eq!(limiter.check_at(&vin, t0 + ms(25)), Ok(()));
        assert!(limiter.check_at(&vin, t0 + ms(25)).is_err());
        let later = t0 + Duration::from_secs(5);
        let passed = (0..150)
            .filter(|_| limiter.check_at(&vin, later).is_ok())
            .count();
        assert_eq!(passed, 100, "a burst of one second's worth at the new rate");
    }

    #[test]
    fn zero_turns_the_limit_off_and_a_new_rate_starts_full() {
        let limiter = VinRateLimiter::new(1);
        let vin = Vin::from_serial("YV1", 1);
        let t0 = Instant::now();
        assert_eq!(limiter.check_at(&vin, t0), Ok(()));
        assert!(limiter.check_at(&vin, t0).is_err());
        limiter.set_per_second(0);
        assert_eq!(limiter.per_second(), 0);
        assert!((0..1_000).all(|_| limiter.check_at(&vin, t0).is_ok()));
        assert_eq!(limiter.tracked(), 0, "no buckets while off");
        limiter.set_per_second(3);
        let passed = (0..10)
            .filter(|_| limiter.check_at(&vin, t0).is_ok())
            .count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn full_buckets_are_dropped() {
        let limiter = VinRateLimiter::new(10);
        let t0 = Instant::now();
        for serial in 0..3 {
            assert_eq!(
                limiter.check_at(&Vin::from_serial("YV1", serial), t0),
                Ok(())
            );
        }
        limiter.drop_full(t0 + ms(50), 10.0);
        assert_eq!(limiter.tracked(), 3, "not full yet");
        limiter.drop_full(t0 + ms(100), 10.0);
        assert_eq!(limiter.tracked(), 0);
    }
}
